"""Activity failures are retried with backoff, visible while retrying (pending activity
attempt + last failure, what `itsm runs show` prints), and surfaced, never dropped."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from datetime import timedelta

from temporalio import workflow

from activities.db import Database
from definitions import registry
from definitions.change import ChangeType
from itsmflow.app import change_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from tests.workflows.helpers import (
    advance_while_idle,
    describe_or_none,
    itsm_cli,
    rows,
    running_worker,
    settled,
    terminate_between_attempts,
)
from tests.workflows.incident_helpers import incidents  # noqa: F401  (fixture)
from workflows.change_models import ChangeState
from workflows.incident_models import IncidentResolveInput
from workflows.models import ActorInput


async def test_smtp_down_is_retried_visible_then_surfaced(env, task_queue, db, channel):
    channel.fail_times = 1000
    now = await env.get_current_time()
    change = build_change(change_id=new_id("CHG", now), title="t", cis=["web-01"], change_type=ChangeType.NORMAL,
                          start=now + timedelta(hours=1), end=now + timedelta(hours=2), requested_by="alice", now=now,
                          policy=registry.get("acme-demo"))
    async with running_worker(env, task_queue, db, channel):
        started = asyncio.create_task(change_ops.submit(env.client, change, task_queue))
        pending = []

        async def retrying() -> bool:
            nonlocal pending
            description = await describe_or_none(env, change.id)  # None: not started yet
            pending = [p for p in description.raw_description.pending_activities
                       if p.attempt >= 2] if description else []
            return bool(pending)

        try:
            await advance_while_idle(env, change.id, retrying)
            assert pending[0].activity_type.name == "notify"
            assert pending[0].last_failure.message == "channel down"
            await advance_while_idle(env, change.id, settled(started), step=timedelta(seconds=5))
            status = await started
        finally:
            # End the run between attempts (the channel back up) while the worker is still up, so
            # the worker stops on no retrying activity, even when the test failed.
            channel.fail_times = 0
            await terminate_between_attempts(env, change.id)
    assert status.state == ChangeState.AUTHORIZE  # the process goes on without the channel
    assert status.notices == ["notification submitted to alice failed: channel down",
                              "notification approval.1.requested to change-managers failed: channel down"]
    assert channel.sent == []


async def test_cmdb_locked_is_retried_visible_then_written_once(env, task_queue, db, channel, incidents):
    """A CMDB write that meets a lock held elsewhere fails, retries with backoff (attempt
    and "database is locked" visible meanwhile), then lands exactly once when it is free."""
    impatient = Database(db.url, busy_timeout=0.2)
    async with running_worker(env, task_queue, impatient, channel):
        status = await incidents.open(impact=3, urgency=3, group="network", ci="lb-01")
        await incidents.act(status.id, "acknowledge", ActorInput(actor="dave"))
        holder = sqlite3.connect(impatient.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        resolving = asyncio.create_task(
            incidents.act(status.id, "resolve", IncidentResolveInput(actor="dave", code="fixed")))
        pending = []

        async def retrying() -> bool:
            nonlocal pending
            description = await env.client.get_workflow_handle(status.id).describe()
            pending = [p for p in description.raw_description.pending_activities
                       if p.activity_type.name == "record_incident" and p.attempt >= 2]
            return bool(pending)

        try:
            await advance_while_idle(env, status.id, retrying)
            assert "database is locked" in pending[0].last_failure.message
            assert not resolving.done()
            shown = await itsm_cli(env, "runs", "show", status.id, "--json")  # what an operator sees
            assert shown.returncode == 0, shown.stderr
            retried = [p for p in json.loads(shown.stdout)["pending_activities"] if p["activity"] == "record_incident"]
            assert retried[0]["attempt"] >= 2 and "database is locked" in retried[0]["last_failure"]
        finally:  # free the lock even when failing, so the run can finish before teardown
            holder.execute("ROLLBACK")
            holder.close()
        resolved = await asyncio.wait_for(resolving, 60)
    assert resolved.state.value == "resolved"
    assert rows(db, "SELECT incident_id, ci FROM incident_record") == [(status.id, "lb-01")]
    assert channel.keys().count("resolved.1") == 1


async def test_cmdb_down_past_its_attempts_says_so_and_tries_again(env, task_queue, db, channel, incidents):
    """A CMDB write retried to its bound (CMDB_OPTIONS: 10 attempts) is not dropped and does
    not fail the run: its notices say so, and it tries again after CMDB_PAUSE, landing once."""
    from workflows.base import CMDB_PAUSE
    from workflows.incident_models import IncidentStatus

    impatient = Database(db.url, busy_timeout=0.05)
    async with running_worker(env, task_queue, impatient, channel):
        status = await incidents.open(impact=3, urgency=3, group="network", ci="lb-01")
        await incidents.act(status.id, "acknowledge", ActorInput(actor="dave"))
        holder = sqlite3.connect(impatient.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        resolving = asyncio.create_task(
            incidents.act(status.id, "resolve", IncidentResolveInput(actor="dave", code="fixed")))
        handle = env.client.get_workflow_handle(status.id)
        notices: list[str] = []

        async def gave_up() -> bool:
            nonlocal notices
            shown = (await handle.query("status", result_type=IncidentStatus)).notices
            notices = [n for n in shown if n.startswith("record the incident")]
            return bool(notices)

        try:
            await advance_while_idle(env, status.id, gave_up, step=timedelta(seconds=30), timeout=120)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert len(notices) == 1 and notices[0].startswith(
            "record the incident on lb-01 in the CMDB: failed 10 times (database is locked); trying again at ")
        assert rows(db, "SELECT incident_id FROM incident_record") == [] and not resolving.done()
        await env.sleep(CMDB_PAUSE)
        resolved = await asyncio.wait_for(resolving, 60)
    assert resolved.state.value == "resolved" and notices[0] in resolved.notices
    assert rows(db, "SELECT incident_id, ci FROM incident_record") == [(status.id, "lb-01")]


async def test_webhook_500_is_retried_per_policy_then_surfaced(env, task_queue, db, channel, incidents):
    from definitions.incident import EscalationStep, StepKind
    from tests.workflows.incident_helpers import policy, webhook_receiver
    from workflows.base import NOTIFY_OPTIONS

    incident_id = new_id("INC", await env.get_current_time())
    incidents.ids.append(incident_id)  # terminated at teardown even if the open never returns
    with webhook_receiver(status=500) as (url, received):
        async with running_worker(env, task_queue, db, channel):
            opening = asyncio.create_task(incidents.open(policy(EscalationStep(kind=StepKind.WEBHOOK, url=url)),
                                                         incident_id=incident_id))
            try:
                # The open settles once the page gave up; until then, move the clock between attempts.
                await advance_while_idle(env, incident_id, settled(opening), step=timedelta(seconds=5))
                status = await opening
            finally:
                opening.cancel()
                await terminate_between_attempts(env, incident_id)
    posts = [key for key, _ in received]
    attempts = NOTIFY_OPTIONS["retry_policy"].maximum_attempts
    assert posts == [f"{status.id}:escalation.1.step1"] * attempts
    assert status.notices == [f"webhook {url} failed: Activity task failed"]
    assert rows(db, "SELECT COUNT(*) FROM notification_ledger WHERE channel = 'webhook'") == [(0,)]


@workflow.defn(name="WedgedWorkflow", sandboxed=False)
class Wedged:
    """A run whose every workflow task fails (as a payload over the server's limit would)."""

    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("state too large to carry")


async def test_a_run_whose_workflow_task_keeps_failing_shows_it(live, task_queue):
    """`runs show` of a wedged run once said only "running": it names the failing task. (On a
    dev server: the test server keeps no pending workflow task to describe.)"""
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    env = live
    async with Worker(env.client, task_queue=task_queue, workflows=[Wedged],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await env.client.start_workflow("WedgedWorkflow", id=f"WEDGED-{uuid.uuid4()}",
                                                 task_queue=task_queue)

        for _ in range(150):  # the server retries a failed workflow task at once, then backs off
            if (await handle.describe()).raw_description.pending_workflow_task.attempt >= 2:
                break
            await asyncio.sleep(0.1)
        shown = await itsm_cli(env, "runs", "show", handle.id, "--json")
        text = await itsm_cli(env, "runs", "show", handle.id)
        await handle.terminate("test finished")
    assert shown.returncode == 0, shown.stderr
    task = json.loads(shown.stdout)["workflow_task"]
    assert task["attempt"] >= 2 and "state too large to carry" in task["last_failure"]
    assert "FAILING        workflow task attempt" in text.stdout and "state too large to carry" in text.stdout


async def test_a_hung_local_attempt_gives_way_and_the_run_answers_meanwhile(live, task_queue, db):
    """A notification whose channel hangs holds the run's workflow task only as long as its
    local attempt may run (LOCAL_ATTEMPT_TIMEOUT, not the activity's 30 s): then it goes on
    as an activity, and an acknowledgement sent meanwhile is accepted after that, while the
    send still hangs. (With the attempt allowed 30 s, the SDK would let the update in on a
    workflow task heartbeat at about 8 s, before any activity was scheduled.)"""
    import threading
    import time

    from itsmflow.app import incident_ops
    from itsmflow.app.incident_submit import build_incident
    from tests.conftest import RecordingChannel
    from tests.workflows.helpers import history_events
    from worker.main import build_worker
    from workflows.models import ActorInput

    class HungOnce(RecordingChannel):
        def __init__(self) -> None:
            super().__init__()
            self.entered, self.release, self.calls = threading.Event(), threading.Event(), 0

        def send(self, message) -> None:
            self.calls += 1
            if self.calls == 1:
                self.entered.set()
                self.release.wait(60)
            super().send(message)

    channel = HungOnce()
    incident = build_incident(title="hung SMTP", impact=3, urgency=3, opened_by="alice")  # no CI: the notice first
    async with build_worker(live.client, task_queue, db=db, channel=channel):
        opening = asyncio.create_task(incident_ops.open_incident(live.client, incident, task_queue))
        try:
            assert await asyncio.to_thread(channel.entered.wait, 30)
            began = time.monotonic()
            acking = asyncio.create_task(
                incident_ops.update(live.client, incident.id, "acknowledge", ActorInput(actor="frank")))
            accepted = None
            while time.monotonic() - began < 20 and accepted is None:
                events = await history_events(live, incident.id)
                accepted = next((e for e in events if e.HasField("workflow_execution_update_accepted_event_attributes")
                                 and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                                 == "acknowledge"), None)
                await asyncio.sleep(0.2)
            waited = time.monotonic() - began
            assert accepted is not None and not channel.release.is_set(), f"not accepted after {waited:.1f} s"
            remote = next((e for e in events if e.HasField("activity_task_scheduled_event_attributes")), None)
            assert remote is not None and remote.event_id < accepted.event_id  # gave way first, then answered
            assert remote.activity_task_scheduled_event_attributes.activity_type.name == "notify"
        finally:
            channel.release.set()
        try:
            await asyncio.wait_for(opening, 60)
            acked = await asyncio.wait_for(acking, 60)
        finally:
            await live.client.get_workflow_handle(incident.id).terminate("test finished")
    assert acked.state.value == "in_progress" and acked.acknowledged_by == "frank"
    assert "opened" in channel.keys()
