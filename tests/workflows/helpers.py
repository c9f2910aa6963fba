"""Helpers for change workflow tests: submissions at exact fake times."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest

from definitions.change import ChangeType
from itsmflow.app import change_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from worker.main import build_worker
from workflows.change_models import ApproveInput, ChangeStatus, CompleteInput, Outcome


def in_flight(pending) -> bool:
    """An activity attempt running now. The test server reports STARTED during a retry's
    backoff too; an attempt that completed (failed) after it last started only waits."""
    from temporalio.api.enums.v1 import PendingActivityState

    return (pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            and pending.last_attempt_complete_time.ToDatetime() < pending.last_started_time.ToDatetime())


async def describe_or_none(env, workflow_id: str):
    """The run's description, or None while it has not started."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await env.client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return None


async def advance_while_idle(env, workflow_id: str, until, step: timedelta = timedelta(seconds=2),
                             timeout: float = 60.0) -> None:
    """Moves the test server's fake clock by `step` at a time until `await until()` is true, but
    only while no activity attempt of `workflow_id` is in flight, and gives up after
    `timeout` seconds of real time.

    Why not a fixed number of steps: on a slow CI runner the worker may not have picked up
    the first task before the steps run out; and a step taken mid-attempt can push the
    attempt past its start-to-close timeout, which a fast machine never sees."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not await until():
        assert time.monotonic() < deadline, f"{workflow_id}: still waiting after {timeout:.0f} s of real time"
        description = await describe_or_none(env, workflow_id)
        if description is None or any(in_flight(p) for p in description.raw_description.pending_activities):
            await asyncio.sleep(0.02)
        else:
            await env.sleep(step)


def settled(task):
    """An `until` for advance_while_idle: the asyncio task (a submit, an open) has returned."""
    async def done() -> bool:
        return task.done()
    return done


async def terminate_between_attempts(env, workflow_id: str, timeout: float = 30.0) -> None:
    """Terminate the run once no activity attempt is in flight (a run terminated mid-attempt
    stops the test server's fake clock); for a test's cleanup, even after it failed."""
    import asyncio
    import time

    from temporalio.service import RPCError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = await describe_or_none(env, workflow_id)
        if description is None or not any(in_flight(p) for p in description.raw_description.pending_activities):
            break
        await asyncio.sleep(0.05)
    try:
        await env.client.get_workflow_handle(workflow_id).terminate("test finished")
    except RPCError:  # never started, or already closed
        pass


async def itsm_cli(env, *args: str, env_extra: dict[str, str] | None = None):
    """The real `itsm` command against the test server, as a subprocess (in a thread: the
    worker shares this loop)."""
    import asyncio
    import os
    import subprocess
    import sys

    variables = {**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host, "ITSM_TIMEOUT": "10",
                 **(env_extra or {})}
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cli.main", *args], capture_output=True,
                                   text=True, timeout=60, env=variables)


@asynccontextmanager
async def running_worker(env, task_queue, db, channel):
    async with build_worker(env.client, task_queue, db=db, channel=channel):
        yield


async def submit(env, task_queue, *, cis=("web-01",), change_type=ChangeType.NORMAL, start_in=timedelta(hours=1),
                 duration=timedelta(hours=1), requested_by="alice", policy=None, **kwargs) -> ChangeStatus:
    """Submit a change starting `start_in` from the server's (fake) now."""
    from definitions import registry

    now = await env.get_current_time()
    change = build_change(
        change_id=new_id("CHG", now), title=kwargs.pop("title", "Patch the web tier"), cis=list(cis),
        change_type=change_type, start=now + start_in, end=now + start_in + duration, requested_by=requested_by,
        now=now, policy=policy or registry.get("acme-demo"), **kwargs,
    )
    return await change_ops.submit(env.client, change, task_queue)


async def approve(env, change_id, actor, comment="") -> ChangeStatus:
    return await change_ops.update(env.client, change_id, "approve", ApproveInput(actor=actor, comment=comment))


async def complete(env, change_id, actor, outcome=Outcome.SUCCESSFUL, notes="done") -> ChangeStatus:
    return await change_ops.update(env.client, change_id, "complete", CompleteInput(actor=actor, outcome=outcome,
                                                                                    notes=notes))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- appended: run tracking, exact-time and history helpers ------------------------------------


class Changes:
    """Submits changes for one test and remembers every run, so teardown can terminate the
    ones still open (each test has its own test server: this keeps a test's end tidy, it no
    longer protects the next test's clock)."""

    def __init__(self, env, task_queue: str) -> None:
        self.env, self.task_queue, self.ids = env, task_queue, []

    async def submit(self, **kwargs) -> ChangeStatus:
        status = await submit(self.env, self.task_queue, **kwargs)
        self.ids.append(status.id)
        return status

    async def submit_between(self, start: datetime, end: datetime, *, cis=("web-01",),
                             change_type=ChangeType.NORMAL, requested_by="alice", policy=None,
                             **kwargs) -> ChangeStatus:
        """Submit a change planned for exactly [start, end)."""
        from definitions import registry

        now = await self.env.get_current_time()
        change = build_change(
            change_id=new_id("CHG", now), title=kwargs.pop("title", "Patch the web tier"), cis=list(cis),
            change_type=change_type, start=start, end=end, requested_by=requested_by, now=now,
            policy=policy or registry.get("acme-demo"), **kwargs,
        )
        status = await change_ops.submit(self.env.client, change, self.task_queue)
        self.ids.append(status.id)
        return status

    async def terminate_open(self) -> None:
        from temporalio.client import WorkflowExecutionStatus

        for change_id in self.ids:
            handle = self.env.client.get_workflow_handle(change_id)
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test teardown")


async def status_of(env, change_id) -> ChangeStatus:
    return await change_ops.status(env.client, change_id)


async def sleep_until(env, moment: datetime) -> None:
    """Skip fake time to `moment` (which must be ahead of the server's now)."""
    delay = moment - await env.get_current_time()
    assert delay > timedelta(0), f"{moment} is already past"
    await env.sleep(delay)


async def refusal(call) -> str:
    """Await an update its validator must refuse; returns the refusal message."""
    import pytest
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError

    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type in ("Refused", "WrongState"), cause
    return cause.message


async def history_events(env, change_id) -> list:
    return list((await env.client.get_workflow_handle(change_id).fetch_history()).events)


async def accepted_updates(env, change_id) -> list[tuple[str, str | None]]:
    """(update name, actor) of every update that entered history, in order."""
    import json

    from temporalio.api.enums.v1 import EventType

    accepted = []
    for event in await history_events(env, change_id):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
            args = update.args.payloads
            accepted.append((update.name, json.loads(args[0].data).get("actor") if args else None))
    return accepted


async def fired_timers(env, change_id) -> list[tuple[timedelta, datetime]]:
    """(duration, fake fire time) of every timer that fired, in order."""
    from temporalio.api.enums.v1 import EventType

    started: dict[int, timedelta] = {}
    fired = []
    for event in await history_events(env, change_id):
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            started[event.event_id] = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            duration = started[event.timer_fired_event_attributes.started_event_id]
            fired.append((duration, event.event_time.ToDatetime(tzinfo=timezone.utc)))
    return fired


async def activity_types(env, change_id) -> list[str]:
    """Names of the activities the run ran (scheduled or local), in order."""
    from itsmflow.app.audit import activity_types as ran

    return ran(await history_events(env, change_id))


def rows(db, sql: str, params: tuple = ()) -> list[tuple]:
    with db.transaction() as cur:
        return cur.all(sql, params)


async def reject(env, change_id, actor, reason) -> ChangeStatus:
    from workflows.change_models import RejectInput

    return await change_ops.update(env.client, change_id, "reject", RejectInput(actor=actor, reason=reason))


async def cancel(env, change_id, actor, reason="") -> ChangeStatus:
    from workflows.change_models import CancelInput

    return await change_ops.update(env.client, change_id, "cancel", CancelInput(actor=actor, reason=reason))


def steps(channel, change_id) -> list[str]:
    """The notification steps sent for one change, in order."""
    return [m.key.split(":", 1)[1] for m in channel.sent if m.key.startswith(f"{change_id}:")]


def emails(*usernames: str) -> list[str]:
    return [f"{u}@acme.example" for u in usernames]


def calendar(db, change_id):
    return rows(db, "SELECT ci, start_at, end_at, state FROM change_calendar WHERE change_id = ? ORDER BY ci",
                (change_id,))


def records(db, change_id):
    return rows(db, "SELECT ci, outcome, idempotency_key FROM change_record WHERE change_id = ? ORDER BY ci",
                (change_id,))


async def finished(env, change_id) -> ChangeStatus:
    """The run completed normally (not failed); returns its result."""
    from temporalio.client import WorkflowExecutionStatus

    handle = env.client.get_workflow_handle(change_id, result_type=ChangeStatus)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    return await handle.result()


def just_after(actual, expected) -> bool:
    """`actual` is `expected` plus at most the processing of one workflow task: a timer counts
    from the completion of the task that started it, workflow.now() from a task's start."""
    return timedelta(0) <= actual - expected < timedelta(seconds=1)


async def fired_just_after(env, change_id, planned) -> bool:
    fired = [moment for _, moment in await fired_timers(env, change_id)]
    assert len(fired) == len(planned) and all(map(just_after, fired, planned)), (fired, planned)
    return True


async def implementing(env, changes, approver="bob", **submit) -> ChangeStatus:
    """A low-risk change approved and run to its planned start."""
    status = await changes.submit(**submit)
    status = await approve(env, status.id, approver)
    await sleep_until(env, status.planned_start + timedelta(seconds=1))
    status = await status_of(env, status.id)
    assert status.state == "implement"
    return status


def worker_with(env, task_queue, activities):
    """A worker like worker.main.build_worker's, with the given activity callables."""
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from worker.main import workflow_classes
    from worker.runner import ProcessRunner

    return Worker(
        env.client, task_queue=task_queue, workflows=workflow_classes(), activities=activities,
        activity_executor=ThreadPoolExecutor(max_workers=4), workflow_runner=ProcessRunner(),
    )


async def activity_outcomes(env, change_id, name) -> list[tuple[int, object]]:
    """(attempt that completed, decoded result) of each completed activity `name`."""
    import json

    events = await history_events(env, change_id)
    scheduled = {e.event_id for e in events if e.activity_task_scheduled_event_attributes.activity_type.name == name}
    started = [e.activity_task_started_event_attributes for e in events]
    attempts = {s.scheduled_event_id: s.attempt for s in started if s.scheduled_event_id in scheduled}
    return [
        (attempts[done.scheduled_event_id], json.loads(done.result.payloads[0].data))
        for e in events
        if (done := e.activity_task_completed_event_attributes).scheduled_event_id in scheduled
    ]


@pytest.fixture
async def changes(env, task_queue, db, channel):
    """A running worker and a tracker of the runs the test starts (ended at teardown)."""
    tracker = Changes(env, task_queue)
    async with running_worker(env, task_queue, db, channel):
        yield tracker
    await tracker.terminate_open()
