"""Durable pieces every process workflow shares: settled waits, notifications, state
search attributes. Deterministic only."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, NoReturn, TypedDict, TypeVar, overload

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    RetryState,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.models import NotifyInput, Recipient
    from activities.notify import NotifyActivities
    from definitions.base import format_duration
    from definitions.org import Organisation
    from definitions.text import shorten
    from itsmflow.errors import NOTIFICATION_REJECTED, REFUSED, WEBHOOK_REJECTED, WRONG_STATE
    from workflows.patches import baseline, local_side_effects, patched
    from workflows.search_attributes import keys as _search_attribute_keys
    from workflows.side_effects import Notify

SEARCH_ATTRIBUTES = _search_attribute_keys()

class ActivityOptions(TypedDict):
    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy


NOTIFY_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=8,
        non_retryable_error_types=[NOTIFICATION_REJECTED, WEBHOOK_REJECTED],
    ),
)
# A CMDB call is retried for about 4 minutes (10 attempts); then the run says so in its
# notices and tries again after CMDB_PAUSE (ProcessWorkflow.cmdb): an outage is visible, a
# step is never dropped.
CMDB_OPTIONS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                             maximum_attempts=10),
)
CMDB_PAUSE = timedelta(minutes=10)
# Runs on `itsm-baseline-2` send notifications and call the CMDB as a local activity first
# (ProcessWorkflow._local_first): short, idempotent (the notification ledger, the CMDB's
# keys), run by the worker in the workflow task that asks for it, with no activity task to
# schedule, dispatch and complete. One attempt (LOCAL_ATTEMPT): when it fails, the call is
# made again as an activity with the full retry policy, so an outage shows as a
# pending activity with its attempts and last failure (`itsm runs show`), as it did before.
LOCAL_ATTEMPT = RetryPolicy(maximum_attempts=1)
# The run answers no update while a local attempt holds its workflow task: an attempt not done
# in this long (an SMTP server that hangs) gives way to the activity, and the run to its users.
LOCAL_ATTEMPT_TIMEOUT = timedelta(seconds=5)
ParamT = TypeVar("ParamT")
ResultT = TypeVar("ResultT")



# The status a run publishes in its memo (key MEMO_STATUS) for reads that need no worker:
# compact (the last MEMO_EVENTS events of the timeline, texts cut to MEMO_TEXT), with who may
# act now (`actions`), once per workflow task in which any of it changed. Runs started before
# this replay without it.
MEMO_STATUS, MEMO_EVENTS, MEMO_TEXT = "status", 10, 500
STATUS_PATCH = "itsm-memo-status"
# Durations in history and state text in the definitions' spelling (`2d`, `30m`), not
# Python's (`2 days, 0:00:00`); runs started before replay with the old text.
DURATION_PATCH = "duration-spelling"


def refuse(message: str) -> NoReturn:
    """Reject an update: validators raise this, so nothing reaches history."""
    raise ApplicationError(message, type=REFUSED, non_retryable=True)


def refuse_state(message: str) -> NoReturn:
    """Reject an update for the run's state. A validator can run a step behind what a query
    already showed (an update that arrives with the event that moves the run on is validated
    before that event is applied), so a client may send it once more, a moment later."""
    raise ApplicationError(message, type=WRONG_STATE, non_retryable=True)


def compact_status(status: dict) -> dict:
    """`{"value": status, "events": "all"|"tail"}`: the timeline cut to its last MEMO_EVENTS
    (a count of the rest kept), texts to MEMO_TEXT characters, fractions to one decimal."""
    events = status.get("events")
    tail = isinstance(events, list) and len(events) > MEMO_EVENTS
    if isinstance(events, list) and tail:
        status = {**status, "events": events[-MEMO_EVENTS:],
                  "events_omitted": status.get("events_omitted", 0) + len(events) - MEMO_EVENTS}
    return {"value": _compact(status), "events": "tail" if tail else "all"}


def compact_model(status: BaseModel) -> dict:
    """`compact_status(status.model_dump(mode="json"))`, without dumping the part of the
    timeline it would cut: the publisher builds it once or twice per workflow task, and a
    long-lived run's timeline is most of its status."""
    events = getattr(status, "events", None)
    if not isinstance(events, list) or len(events) <= MEMO_EVENTS:
        return compact_status(status.model_dump(mode="json"))
    dumped = status.model_dump(mode="json", exclude={"events"})
    recent = [event.model_dump(mode="json") if isinstance(event, BaseModel) else event
              for event in events[-MEMO_EVENTS:]]
    ordered: dict[str, Any] = {}
    for name in type(status).model_fields:
        if name == "events":
            ordered["events"] = recent
        elif name in dumped:
            ordered[name] = dumped[name]
    ordered.update((name, value) for name, value in dumped.items() if name not in ordered)
    ordered["events_omitted"] = ordered.get("events_omitted", 0) + len(events) - MEMO_EVENTS
    return {"value": _compact(ordered), "events": "tail"}


def _compact(value):
    kind = type(value)
    if kind is str:
        return value if len(value) <= MEMO_TEXT else shorten(value, MEMO_TEXT)
    if kind is dict:
        return {k: _compact(v) for k, v in value.items()}
    if kind is list:
        return [_compact(v) for v in value]
    if kind is float:
        return round(value, 1)
    if isinstance(value, str):
        return shorten(value, MEMO_TEXT)
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


async def open_or_attach(run: Callable[[Any, Any], Awaitable[Any]], arg: Any, *, id: str,
                         memo: dict | None = None, search_attributes: TypedSearchAttributes | None = None,
                         summary: str | None = None) -> bool:
    """Start a run of its own from a workflow, under `id`: abandoned, it outlives this one
    (a problem an incident suggests, a review's action items). True when this call started it;
    False when a run with that id exists already (a retried step), which is then to be told
    by signal. `run` is the child's `@workflow.run` method (`ProblemWorkflow.run`). The
    worker signs the start (ITSM_AUTH)."""
    try:
        await workflow.start_child_workflow(
            run, arg, id=id, parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, memo=memo, search_attributes=search_attributes,
            static_summary=summary)
    except WorkflowAlreadyStartedError:
        return False
    return True


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
    _publishes_status = False
    _spells_durations = False
    _published_status: dict | None = None
    _local_attempts = 0  # local activities in flight (they finish within the workflow task)

    def _init_base(self) -> None:
        baseline()  # first: the run's one patch marker, before any other (workflows/patches.py)
        self._blocked_on = None
        self._notices = []
        # Decided in the first activation, before the verified-start local activity (a patch
        # checked after it can fall into another workflow task live than on replay).
        self._publishes_status = patched(STATUS_PATCH)
        self._published_status = None
        self._spells_durations = patched(DURATION_PATCH)

    def spell(self, duration: timedelta) -> str:
        """A duration as history and state text show it."""
        return format_duration(duration) if self._spells_durations else str(duration)

    def spell_time(self, moment: datetime) -> str:
        """A time as state text shows it (to the second, UTC), not full ISO with microseconds."""
        return f"{moment:%Y-%m-%d %H:%M:%S}Z" if self._spells_durations else moment.isoformat()

    def status(self):
        raise NotImplementedError

    def pending_actions(self) -> list[dict]:
        """Who may act now: `[{"action": ..., "groups": [...], "users": [...]}]`, kept in the memo
        with the status (the inbox, links and chat read it; validators still decide)."""
        return []

    def publish_status(self) -> None:
        """Keep the status current in the memo from now on (call first thing in `run`): a
        coroutine waits until what `status()` shows differs from what was published and
        the main loop is not about to run (so an update that wakes it is published with
        what it led to, in one upsert), then upserts it."""
        if self._publishes_status:
            self._publisher = asyncio.ensure_future(self._keep_status_published())

    async def _keep_status_published(self) -> None:
        while True:
            await workflow.wait_condition(self._status_to_publish)
            assert self._published_status is not None
            workflow.upsert_memo({MEMO_STATUS: {"at": workflow.now().isoformat(), **self._published_status}})

    def _status_to_publish(self) -> bool:
        if self._blocked_on is not None and self._blocked_on():
            return False  # the main loop wakes with this: publish what it leads to
        if self._local_attempts:
            return False  # done within this workflow task: publish what it leads to
        current = {**compact_model(self.status()), "actions": self.pending_actions()}
        if current == self._published_status:
            return False
        self._published_status = current
        return True

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
            context={**self._notify_context(), **(extra or {})}, decided_at=workflow.now(),
        )
        summary = f"notify {', '.join(to)}: {template.replace('_', ' ')}"
        try:
            await self._local_first(NotifyActivities.notify, message, summary, NOTIFY_OPTIONS)
        except ActivityError as err:
            cause = err.cause.message if err.cause and hasattr(err.cause, "message") else str(err)
            self._notices.append(f"notification {step} to {', '.join(to)} failed: {cause}")

    @overload
    async def cmdb(self, activity: Callable[[Any, ParamT], Awaitable[ResultT]], arg: ParamT, *,
                   summary: str) -> ResultT: ...

    @overload
    async def cmdb(self, activity: Callable[[Any, ParamT], ResultT], arg: ParamT, *, summary: str) -> ResultT: ...

    async def cmdb(self, activity: Callable[[Any, Any], Any], arg: Any, *, summary: str) -> Any:
        """Run a CMDB activity (a method of CmdbActivities, ProblemActivities, ...) with its
        bounded retry. When the attempts run out, the run's notices say so and it tries again
        after CMDB_PAUSE, until the CMDB answers; an error not worth retrying is raised."""
        while True:
            try:
                return await self._local_first(activity, arg, summary, CMDB_OPTIONS)
            except ActivityError as err:
                if err.retry_state != RetryState.MAXIMUM_ATTEMPTS_REACHED:
                    raise
                cause = getattr(err.cause, "message", None) or str(err)
                self._notices.append(f"{summary}: failed {CMDB_OPTIONS['retry_policy'].maximum_attempts} times "
                                     f"({cause}); trying again at "
                                     f"{self.spell_time(workflow.now() + CMDB_PAUSE)}")
                await workflow.sleep(CMDB_PAUSE, summary=f"the CMDB to recover: {summary}")

    async def _local_first(self, activity: Callable[[Any, Any], Any], arg: Any, summary: str,
                           options: ActivityOptions) -> Any:
        """Run `activity` with `options`: on `itsm-baseline-2`, one attempt as a local activity
        first; when that fails (for whatever reason: the activity decides again), as an
        activity with the full retry policy. Raises that activity's ActivityError."""
        if local_side_effects():
            self._local_attempts += 1
            try:
                return await workflow.execute_local_activity_method(
                    activity, arg, summary=summary, retry_policy=LOCAL_ATTEMPT,
                    start_to_close_timeout=min(options["start_to_close_timeout"], LOCAL_ATTEMPT_TIMEOUT))
            except FailureError as err:  # the SDK raises a local attempt's own failure, unwrapped
                if isinstance(err, CancelledError):
                    raise
                workflow.logger.info("%s: the local attempt failed (%s); retrying as an activity", summary, err)
            finally:
                self._local_attempts -= 1
        return await workflow.execute_activity_method(activity, arg, summary=summary, **options)

    async def send(self, notice: Notify) -> None:
        """Run a queued notification (see workflows/side_effects.py)."""
        await self.notify(notice.step, notice.template, notice.to, notice.extra)

    def set_search_state(self, state: str, **more: str) -> None:
        updates = [SEARCH_ATTRIBUTES["ItsmState"].value_set(state)]
        updates += [SEARCH_ATTRIBUTES[name].value_set(value) for name, value in more.items()]
        workflow.upsert_search_attributes(updates)

    def publish_outcome(self, outcome: str) -> None:
        """The KPI milestone of a finished process (`itsm report kpis` reads visibility only).
        Runs started before these attributes existed replay without them."""
        if patched("kpi-attributes"):
            workflow.upsert_search_attributes([SEARCH_ATTRIBUTES["ItsmOutcome"].value_set(outcome),
                                               SEARCH_ATTRIBUTES["ItsmResolvedAt"].value_set(workflow.now())])

    def publish_breaches(self, clocks: list[str]) -> None:
        if patched("kpi-attributes"):
            workflow.upsert_search_attributes([SEARCH_ATTRIBUTES["ItsmBreaches"].value_set(clocks)])
