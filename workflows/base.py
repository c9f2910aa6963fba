"""Durable pieces every process workflow shares: settled waits, notifications, state
search attributes. Deterministic only."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import NotifyInput, NotifyResult, Recipient
    from definitions.org import Organisation
    from workflows.search_attributes import keys as _search_attribute_keys

SEARCH_ATTRIBUTES = _search_attribute_keys()

NOTIFY_OPTIONS = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=8
    ),
)
CMDB_OPTIONS = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
)


REFUSED, WRONG_STATE = "Refused", "WrongState"


def refuse(message: str) -> None:
    """Reject an update: validators raise this, so nothing reaches history."""
    raise ApplicationError(message, type=REFUSED, non_retryable=True)


def refuse_state(message: str) -> None:
    """Reject an update for the run's state. A validator can run a step behind what a query
    already showed (an update that arrives with the event that moves the run on is validated
    before that event is applied), so a client may send it once more, a moment later."""
    raise ApplicationError(message, type=WRONG_STATE, non_retryable=True)


class SettleUpdate:
    """The `settle` update of a process whose start returns at a stable state: it returns
    the status once the run waits on people or time. Needs `until_settled()` and `status()`."""

    # A run that fails at start (an unverified actor) ends with this update still waiting; its
    # caller gets the run's failure, so there is nothing to warn about.
    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def settle(self):
        await self.until_settled()
        return self.status()


class ProcessWorkflow:
    """Base for process workflows.

    The run is *settled* while the main loop is blocked on a condition that is still false.
    Update handlers wait for that before returning, so `approve` (and friends) return the
    state the decision led to, whether it moved the run on or left it waiting."""

    _blocked_on: Callable[[], bool] | None = None
    _notices: list[str]

    def _init_base(self) -> None:
        self._blocked_on = None
        self._notices = []

    def interrupted(self) -> bool:
        """True when a pending request (e.g. cancel) must wake every wait."""
        return False

    async def wait(self, condition: Callable[[], bool], timeout: timedelta | None, summary: str) -> bool:
        """Wait for `condition`, an interruption or the timeout; False only on timeout."""
        woken = lambda: condition() or self.interrupted()  # noqa: E731
        self._blocked_on = woken
        try:
            await workflow.wait_condition(woken, timeout=timeout, timeout_summary=summary)
        except asyncio.TimeoutError:
            return False
        finally:
            self._blocked_on = None
        return True

    def settled(self) -> bool:
        return self._blocked_on is not None and not self._blocked_on()

    def finish(self) -> None:
        """The main loop is done: every later update sees a settled run."""
        self._blocked_on = lambda: False

    async def until_settled(self) -> None:
        await workflow.wait_condition(self.settled)

    def now(self):
        return workflow.now()

    def _organisation(self) -> Organisation:
        raise NotImplementedError

    def _notify_context(self) -> dict:
        raise NotImplementedError

    def _template_folder(self) -> str:
        raise NotImplementedError

    def _recipients(self, names: list[str]) -> list[Recipient]:
        """Resolve users and groups (by name) to unique recipients, in order."""
        org = self._organisation()
        usernames: list[str] = []
        for name in names:
            for user in org.members(name) if org.group(name) else [name]:
                if user not in usernames:
                    usernames.append(user)
        return [Recipient(username=u, email=p.email) for u in usernames if (p := org.person(u))]

    async def notify(self, step: str, template: str, to: list[str], extra: dict | None = None) -> None:
        """Send one notification, keyed `<workflow id>:<step>`. A channel that stays down
        after the retry policy is surfaced as a notice, never silently dropped."""
        recipients = self._recipients(to)
        key = f"{workflow.info().workflow_id}:{step}"
        message = NotifyInput(
            key=key, template=f"{self._template_folder()}/{template}", recipients=recipients,
            context={**self._notify_context(), **(extra or {})},
        )
        try:
            await workflow.execute_activity(
                "notify", message, result_type=NotifyResult,
                summary=f"notify {', '.join(to)}: {template.replace('_', ' ')}", **NOTIFY_OPTIONS,
            )
        except ActivityError as err:
            cause = err.cause.message if err.cause and hasattr(err.cause, "message") else str(err)
            self._notices.append(f"notification {step} to {', '.join(to)} failed: {cause}")

    def set_search_state(self, state: str, **more: str) -> None:
        updates = [SEARCH_ATTRIBUTES["ItsmState"].value_set(state)]
        updates += [SEARCH_ATTRIBUTES[name].value_set(value) for name, value in more.items()]
        workflow.upsert_search_attributes(updates)

    def publish_outcome(self, outcome: str) -> None:
        """The KPI milestone of a finished process (`itsm report kpis` reads visibility only).
        Runs started before these attributes existed replay without them."""
        if workflow.patched("kpi-attributes"):
            workflow.upsert_search_attributes([SEARCH_ATTRIBUTES["ItsmOutcome"].value_set(outcome),
                                               SEARCH_ATTRIBUTES["ItsmResolvedAt"].value_set(workflow.now())])

    def publish_breaches(self, clocks: list[str]) -> None:
        if workflow.patched("kpi-attributes"):
            workflow.upsert_search_attributes([SEARCH_ATTRIBUTES["ItsmBreaches"].value_set(clocks)])
