"""Chaos: mixed changes, incidents and requests run to their outcome while the worker
process is SIGKILLed and restarted again and again, on a real dev server.

Every run must finish with the right outcome, every CMDB write must exist exactly once
and every notification must have been sent exactly once (outbox lines vs ledger, one per
`<workflow id>:<step>` key). A small round runs in `make test`; `make chaos` runs 100.

Drivers retry their calls the way a patient operator would, but with a fixed update id
per step, so a retried decision is deduplicated by Temporal, never applied twice."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.cli.test_cli_e2e import wait_for_poller
from worker.server import DevServer, free_port, wait_until_ready

pytestmark = pytest.mark.chaos


@dataclass
class Chaos:
    address: str
    home: Path
    env: dict
    server: DevServer | None = None
    worker: subprocess.Popen | None = None
    kills: int = 0
    restarts: int = 0
    outages: list[tuple[datetime, datetime]] = field(default_factory=list)  # server stopped, back
    log: list[str] = field(default_factory=list)

    def start_worker(self) -> None:
        self.worker = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill_worker(self) -> None:
        os.kill(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        self.kills += 1

    async def killer(self, stop: asyncio.Event, every: tuple[float, float]) -> None:
        rng = random.Random(7)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), rng.uniform(*every))
            except asyncio.TimeoutError:
                self.kill_worker()
                self.start_worker()


    async def restarter(self, at: list[float], timer_pending=None) -> None:
        """Stop and restart the server (same SQLite file) at these seconds into the run, each
        once a durable timer is pending (`timer_pending()`, waited for up to 30 s more): on a
        loaded machine the runs may not have reached one by then."""
        began = time.monotonic()
        for moment in at:
            await asyncio.sleep(max(0.0, began + moment - time.monotonic()))
            patience = time.monotonic() + 30
            while timer_pending is not None and time.monotonic() < patience and not await timer_pending():
                await asyncio.sleep(0.5)
            stopped = datetime.now(timezone.utc)
            self.server.stop()
            process = self.server.spawn(detach=False)
            await wait_until_ready(self.server.address, 60, process)
            self.outages.append((stopped, datetime.now(timezone.utc)))
            self.restarts += 1


async def patiently(call, what: str, deadline: float):
    """Retry `call()` through worker outages (timeouts, no poller) until `deadline`."""
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError

    while True:
        try:
            return await call()
        except (WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError, RPCError) as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still failing at the deadline: {err}") from err
            await asyncio.sleep(0.5)


async def update(client, run_id: str, name: str, arg, step: str, deadline: float):
    """Send an update as a patient user would: through outages, and again after a refusal
    that only says the run is a step behind ("CHG-… is assess, not awaiting approval"). A
    validator runs before the workflow code when the update shares a workflow task with the
    activity result that moves the run on (seen once in 100 runs, right after a server
    restart, though a query had already shown `authorize`); a refused call changes nothing."""
    from temporalio.client import WorkflowUpdateFailedError

    handle = client.get_workflow_handle(run_id)

    async def call():
        while True:
            try:
                return await handle.execute_update(name, arg, id=f"chaos:{run_id}:{step}",
                                                   rpc_timeout=timedelta(seconds=5))
            except WorkflowUpdateFailedError as err:
                message = str(getattr(err.cause, "message", err.cause))
                behind = any(f"is {early}, not awaiting" in message for early in ("new", "assess"))
                if not behind or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    return await patiently(call, f"{run_id} {step}", deadline)


async def query_until(client, run_id: str, done, deadline: float, result_type):
    handle = client.get_workflow_handle(run_id)
    while True:
        status = await patiently(lambda: handle.query("status", result_type=result_type,
                                                      rpc_timeout=timedelta(seconds=5)), run_id, deadline)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"{run_id} stuck in {status.state}"
        await asyncio.sleep(0.5)


async def start(client, workflow: str, arg, run_id: str, queue: str, deadline: float):
    """Start once (a retry after a lost reply finds the run already there)."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    async def attempt():
        try:
            await client.start_workflow(workflow, arg, id=run_id, task_queue=queue, rpc_timeout=timedelta(seconds=5))
        except WorkflowAlreadyStartedError:
            pass

    await patiently(attempt, f"start {run_id}", deadline)


async def drive_change(client, queue: str, deadline: float) -> tuple[str, str]:
    from definitions import registry
    from itsmflow.app.change_submit import build_change
    from itsmflow.app.ids import new_id
    from workflows.change_models import ApproveInput, ChangeStatus, CompleteInput, Outcome

    now = datetime.now(timezone.utc)
    change = build_change(
        change_id=new_id("CHG"), title="chaos patch", cis=["web-01", "web-02"], change_type="normal",
        start=now + timedelta(seconds=12), end=now + timedelta(hours=1), requested_by="alice", now=now,
        policy=registry.get("acme-demo"),
    )
    await start(client, "ChangeWorkflow", change, change.id, queue, deadline)
    await query_until(client, change.id, lambda s: s.state.value == "authorize", deadline, ChangeStatus)
    await update(client, change.id, "approve", ApproveInput(actor="bob", comment="ok"), "approve", deadline)
    await query_until(client, change.id, lambda s: s.state.value == "implement", deadline, ChangeStatus)
    await update(client, change.id, "complete", CompleteInput(actor="erin", outcome=Outcome.SUCCESSFUL), "complete",
                 deadline)
    return change.id, "closed"


async def drive_incident(client, queue: str, deadline: float) -> tuple[str, str]:
    from itsmflow.app.incident_submit import build_incident
    from workflows.incident_models import IncidentResolveInput, IncidentStatus
    from workflows.models import ActorInput

    incident = build_incident(title="chaos lb-01 down", ci="lb-01", impact=2, urgency=2, opened_by="erin")
    incident = incident.model_copy(update={"policy": incident.policy.model_copy(
        update={"reopen_window": timedelta(seconds=3)})})
    await start(client, "IncidentWorkflow", incident, incident.id, queue, deadline)
    await query_until(client, incident.id, lambda s: s.state.value == "new", deadline, IncidentStatus)
    await update(client, incident.id, "acknowledge", ActorInput(actor="dave"), "ack", deadline)
    await update(client, incident.id, "resolve", IncidentResolveInput(actor="dave", code="restarted"), "resolve",
                 deadline)
    return incident.id, "closed"


async def drive_request(client, queue: str, deadline: float) -> tuple[str, str]:
    from itsmflow.app.request_submit import build_request

    request = build_request(item_name="account", raw={"name": "Chaos Monkey", "team": "sre"}, requested_by="alice")
    await start(client, "RequestWorkflow", request, request.id, queue, deadline)
    return request.id, "fulfilled"


DRIVERS = {"change": drive_change, "incident": drive_incident, "request": drive_request}


async def run_chaos(runs: int, every: tuple[float, float] | None, tmp_path: Path, budget: float,
                    server_restarts: tuple[float, ...] = ()) -> dict:
    from worker.connect import connect

    home = tmp_path
    server = DevServer(port=free_port(), db=home / "temporal.db", headless=True, http_port=free_port())
    process = server.spawn(detach=False)
    await wait_until_ready(server.address, 60, process)
    queue = f"chaos-{uuid.uuid4()}"
    env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "ITSM_TASK_QUEUE": queue,
           "ITSM_DB_URL": f"sqlite:///{home / 'cmdb.sqlite3'}", "ITSM_OUTBOX": str(home / "outbox.jsonl"),
           "ITSM_HOME": str(home)}
    env.pop("ITSM_SMTP_HOST", None)
    chaos = Chaos(server.address, home, env, server)
    chaos.start_worker()
    try:
        await wait_for_poller(server.address, queue)
        client = await connect(target_host=server.address)
        deadline = time.monotonic() + budget
        kinds = [list(DRIVERS)[i % 3] for i in range(runs)]
        stop = asyncio.Event()
        killer = asyncio.create_task(chaos.killer(stop, every) if every else stop.wait())
        async def timer_pending() -> bool:
            from temporalio.api.enums.v1 import EventType as E

            async for execution in client.list_workflows(f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"):
                started: set[int] = set()
                async for event in client.get_workflow_handle(execution.id).fetch_history_events():
                    if event.event_type == E.EVENT_TYPE_TIMER_STARTED:
                        started.add(event.event_id)
                    elif event.event_type == E.EVENT_TYPE_TIMER_FIRED:
                        started.discard(event.timer_fired_event_attributes.started_event_id)
                    elif event.event_type == E.EVENT_TYPE_TIMER_CANCELED:
                        started.discard(event.timer_canceled_event_attributes.started_event_id)
                if started:
                    return True
            return False

        restarter = asyncio.create_task(chaos.restarter(list(server_restarts), timer_pending))
        began = time.monotonic()
        drivers = [asyncio.create_task(DRIVERS[kind](client, queue, deadline)) for kind in kinds]
        try:
            outcomes = await asyncio.gather(*drivers)
        except BaseException:  # one run's failure is the verdict: stop the others retrying
            for driver in drivers:
                driver.cancel()
            raise
        # Keep killing until every run has finished by itself (timers, auto-close, children).
        results = {}
        for run_id, expected in outcomes:
            handle = client.get_workflow_handle(run_id)
            result = await patiently(lambda handle=handle: handle.result(rpc_timeout=timedelta(seconds=10)), run_id,
                                     deadline)
            results[run_id] = (result["state"], expected)
        stop.set()
        await killer
        await restarter
        elapsed = time.monotonic() - began
        return {"results": results, "kinds": Counter(kinds), "kills": chaos.kills, "restarts": chaos.restarts,
                "elapsed": elapsed, "home": home,
                "timers_across_outages": await timers_across(client, list(results), chaos.outages)}
    finally:
        if chaos.worker and chaos.worker.poll() is None:
            chaos.worker.terminate()
            chaos.worker.wait(timeout=20)
        server.stop()


async def timers_across(client, run_ids: list[str], outages: list[tuple[datetime, datetime]]) -> list[int]:
    """For each server outage, how many durable timers were started before the server
    stopped and fired after it was back: proof that pending timers survived it."""
    from temporalio.api.enums.v1 import EventType as E

    spans = []
    for run_id in run_ids:
        started: dict[int, datetime] = {}
        async for event in client.get_workflow_handle(run_id).fetch_history_events():
            moment = event.event_time.ToDatetime(tzinfo=timezone.utc)
            if event.event_type == E.EVENT_TYPE_TIMER_STARTED:
                started[event.event_id] = moment
            elif event.event_type == E.EVENT_TYPE_TIMER_FIRED:
                spans.append((started[event.timer_fired_event_attributes.started_event_id], moment))
    return [sum(1 for begun, fired in spans if begun < stopped and fired > back) for stopped, back in outages]


def audit_side_effects(report: dict) -> dict:
    """Exactly-once evidence from the CMDB and the outbox; returns the counts."""
    home, results = report["home"], report["results"]
    with sqlite3.connect(home / "cmdb.sqlite3") as db:
        changes = Counter(row[0] for row in db.execute("SELECT change_id FROM change_record"))
        incidents = Counter(row[0] for row in db.execute("SELECT incident_id FROM incident_record"))
        actions = Counter(row[0] for row in
                          db.execute("SELECT item_id FROM fulfillment_record WHERE action = 'create_account'"))
        ledger = {row[0] for row in db.execute("SELECT idempotency_key FROM notification_ledger")}
    sent = Counter(json.loads(line)["key"] for line in (home / "outbox.jsonl").read_text().splitlines())
    change_ids = [r for r in results if r.startswith("CHG-")]
    incident_ids = [r for r in results if r.startswith("INC-")]
    request_ids = [r for r in results if r.startswith("REQ-")]
    assert {c: changes[c] for c in change_ids} == {c: 2 for c in change_ids}, "change_record not once per CI"
    assert {i: incidents[i] for i in incident_ids} == {i: 1 for i in incident_ids}, "incident_record not once"
    assert len(actions) == len(request_ids) and set(actions.values()) <= {1}, f"create_account: {actions}"
    duplicates = {key: n for key, n in sent.items() if n > 1}
    assert duplicates == {}, f"notifications sent twice: {duplicates}"
    assert set(sent) == ledger, "outbox and ledger disagree"
    # ... and every notice each run owes was sent (none lost to a kill).
    steps: dict[str, set[str]] = {}
    for key in sent:
        run, step = key.split(":", 1)
        steps.setdefault(run, set()).add(step)
    change_steps = {"submitted", "approval.1.requested", "approved", "scheduled", "implement", "closed"}
    for change_id in change_ids:
        assert steps.get(change_id) == change_steps, f"{change_id}: {steps.get(change_id)}"
    for incident_id in incident_ids:
        missing = {"opened", "escalation.1.step1", "resolved.1"} - steps.get(incident_id, set())
        assert not missing, f"{incident_id}: {missing} never sent"
    fulfilled = [run for run, done in steps.items() if run.startswith("RITM-") and "fulfilled" in done]
    assert len(fulfilled) == len(request_ids), f"{len(fulfilled)} items fulfilled for {len(request_ids)} requests"
    return {"runs": len(results), "kills": report["kills"], "server_restarts": report["restarts"],
            "change_records": sum(changes.values()),
            "incident_records": sum(incidents.values()), "fulfilment_actions": sum(actions.values()),
            "notifications": sum(sent.values()), "elapsed_s": round(report["elapsed"], 1)}


def check(report: dict) -> dict:
    wrong = {run: got for run, got in report["results"].items() if got[0] != got[1]}
    assert wrong == {}, f"wrong outcomes: {wrong}"
    counts = audit_side_effects(report)
    if report["timers_across_outages"]:
        counts["timers_across_outages"] = report["timers_across_outages"]
    print("\nchaos:", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


async def test_worker_sigkill_loses_and_doubles_nothing(tmp_path):
    report = await run_chaos(runs=9, every=(2.0, 4.0), tmp_path=tmp_path, budget=240)
    counts = check(report)
    assert counts["kills"] >= 2


async def test_server_restarts_mid_run_lose_nothing(tmp_path):
    """Pending timers (scheduled starts, auto-close) fire after the server comes back."""
    report = await run_chaos(runs=6, every=None, tmp_path=tmp_path, budget=240, server_restarts=(3.0, 9.0))
    counts = check(report)
    assert counts["server_restarts"] == 2
    assert all(n >= 1 for n in report["timers_across_outages"]), report["timers_across_outages"]


@pytest.mark.slow
async def test_chaos_100_mixed_runs(tmp_path):
    report = await run_chaos(runs=100, every=(1.5, 4.0), tmp_path=tmp_path, budget=900, server_restarts=(30.0,))
    counts = check(report)
    assert counts["runs"] == 100 and counts["kills"] >= 10
