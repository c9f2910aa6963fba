"""Bare Temporal baselines, in a module that imports nothing but temporalio, so the
workflow sandbox's per-run import costs them no more than it costs our workflows."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes


@activity.defn(name="bare_side_effect")
def bare_side_effect(step: str) -> str:
    return step


class _BareShape:
    """Ours in shape: at open, the CI's known errors then the opened notice, beside the first
    on-call page; updates ack and resolve; at resolve, the CMDB record and the resolved notice;
    the open (settle) and resolve calls return once those are done (the settled state)."""

    local = True

    def __init__(self) -> None:
        self.opened = self.resolved = self.done = False

    @staticmethod
    def start_options() -> dict:
        """What the bench's start passes besides the input (memo, search attributes)."""
        return {}

    @staticmethod
    def input(workflow_id: str) -> str:
        return workflow_id

    async def _step(self, step: str) -> None:
        if self.local:
            await workflow.execute_local_activity(bare_side_effect, step, start_to_close_timeout=timedelta(seconds=30))
        else:
            await workflow.execute_activity(bare_side_effect, step, start_to_close_timeout=timedelta(seconds=30))

    async def _opened(self) -> None:
        await self._step("ci")
        await self._step("opened")

    async def _run(self, incident_id: str) -> str:
        await asyncio.gather(self._opened(), self._step("page"))
        self.opened = True
        await workflow.wait_condition(lambda: self.resolved)
        await self._step("record")
        await self._step("notify")
        self.done = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return incident_id

    @workflow.update
    async def settle(self) -> str:
        await workflow.wait_condition(lambda: self.opened)
        return "new"

    @workflow.update
    async def acknowledge(self, actor: str) -> str:
        return "in_progress"

    @workflow.update
    async def resolve(self, actor: str) -> str:
        self.resolved = True
        await workflow.wait_condition(lambda: self.done)
        return "resolved"


@workflow.defn
class BareIncident(_BareShape):
    """The fair baseline: ours in shape, with the five side effects as local activities, as
    ours runs them (`itsm-baseline-2`)."""

    @workflow.run
    async def run(self, incident_id: str) -> str:
        return await self._run(incident_id)


@workflow.defn
class BareRemoteIncident(_BareShape):
    """The same shape with the five side effects as (remote) activities, as ours ran them on
    `itsm-baseline-1`: the fair baseline until 2026-12-04, kept for comparison."""

    local = False

    @workflow.run
    async def run(self, incident_id: str) -> str:
        return await self._run(incident_id)


STATE = SearchAttributeKey.for_keyword("ItsmState")


@workflow.defn
class BarePublishingIncident(_BareShape):
    """The fair baseline doing what ours does besides its side effects and updates, so the bench
    can tell our code's cost from the cost of what the product keeps on the server: each
    workflow task upserts a search attribute (the list columns) and a 2.5 KB memo (the status
    `show` and `list` read without a worker); a patch marker at start (the baseline); a timer
    at open (the SLA and escalation) replaced at resolve (the reopen window); payloads of our
    sizes (a 7 KB input, 1 KB side-effect inputs, 2.5 KB answers); and the run stays open
    after resolve, as ours waits out the reopen window. Started with the memo and search
    attributes ours starts with."""

    def __init__(self) -> None:
        super().__init__()
        self.timer: asyncio.Future | None = None

    async def _step(self, step: str) -> None:
        await super()._step(step + "y" * 1000)

    def _publish(self, state: str) -> None:
        workflow.upsert_search_attributes([STATE.value_set(state)])
        workflow.upsert_memo({"status": state + "m" * 2500})

    @staticmethod
    def _answer(state: str) -> str:
        return state + "z" * 2500

    @workflow.run
    async def run(self, incident: str) -> str:
        workflow.patched("bare-baseline")
        await asyncio.gather(self._opened(), self._step("page"))
        self._publish("new")
        self.timer = asyncio.ensure_future(workflow.sleep(timedelta(minutes=15)))
        self.opened = True
        await workflow.wait_condition(lambda: self.resolved)
        await self._step("record")
        await self._step("notify")
        self._publish("resolved")
        self.timer.cancel()
        self.timer = asyncio.ensure_future(workflow.sleep(timedelta(days=3)))
        self.done = True
        await workflow.wait_condition(lambda: False)  # the reopen window; the bench ends it
        return incident

    @workflow.update
    async def settle(self) -> str:
        await workflow.wait_condition(lambda: self.opened)
        return self._answer("new")

    @workflow.update
    async def acknowledge(self, actor: str) -> str:
        self._publish("in_progress")
        return self._answer("in_progress")

    @workflow.update
    async def resolve(self, actor: str) -> str:
        self.resolved = True
        await workflow.wait_condition(lambda: self.done)
        return self._answer("resolved")

    @staticmethod
    def start_options() -> dict:
        return {"memo": {"title": "bench"},
                "search_attributes": TypedSearchAttributes([SearchAttributePair(STATE, "new")])}

    @staticmethod
    def input(workflow_id: str) -> str:
        return workflow_id + "x" * 7000


@workflow.defn
class MinimalIncident:
    """The floor: a plain start, updates ack and resolve, two activities (the page at open, the
    CMDB record at resolve); resolve returns once the record is done and the run has ended."""

    def __init__(self) -> None:
        self.acknowledged = self.resolved = self.done = False

    @workflow.run
    async def run(self, incident_id: str) -> str:
        options = dict(start_to_close_timeout=timedelta(seconds=30))
        await workflow.execute_activity(bare_side_effect, "page", **options)
        await workflow.wait_condition(lambda: self.resolved)
        await workflow.execute_activity(bare_side_effect, "record", **options)
        self.done = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return incident_id

    @workflow.update
    async def acknowledge(self, actor: str) -> str:
        self.acknowledged = True
        return "in_progress"

    @workflow.update
    async def resolve(self, actor: str) -> str:
        self.resolved = True
        await workflow.wait_condition(lambda: self.done)
        return "resolved"


@workflow.defn
class BareWeek:
    """N timers and M activities spread over 7 days."""

    @workflow.run
    async def run(self, shape: dict) -> int:
        for index in range(shape["timers"]):
            await workflow.sleep(timedelta(days=7) / shape["timers"])
            if index < shape["activities"]:
                await workflow.execute_activity(bare_side_effect, str(index),
                                                start_to_close_timeout=timedelta(seconds=10))
        return shape["timers"]


@workflow.defn
class BareEscalation:
    """The scale bench's escalation, bare: a notice at open, a timer to `due` (ISO), then the
    page, whose input ends with `page_key` as ours do; the notice and the page as local
    activities, as ours sends them (`itsm-baseline-2`)."""

    @workflow.run
    async def run(self, due: str, page_key: str) -> str:
        options = dict(start_to_close_timeout=timedelta(seconds=30))
        await workflow.execute_local_activity(bare_side_effect, "opened", **options)
        await workflow.sleep(max(datetime.fromisoformat(due) - workflow.now(), timedelta(milliseconds=1)))
        await workflow.execute_local_activity(bare_side_effect, f"{workflow.info().workflow_id}:{page_key}",
                                              **options)
        return page_key
