"""Scale: N open incidents on the embedded dev server, one `itsm worker` process.

Measures, in one run on the same server:
- `itsm incident list` (first page) wall time, against Go `temporal workflow list` of the
  same page (the bare baseline);
- the worker process's RSS (current and peak) with every incident open;
- timer lateness with E escalations due together (their spread is reported): TimerFired time minus
  (TimerStarted time + timeout), from the histories, and how late the page activity was
  scheduled after the intended moment (timer + the worker's workflow task), broken down from
  the histories into the workflow task after the timer: fired → task scheduled → started
  (schedule-to-start: the backlog) → completed (the worker's run of it, a full replay when the
  run was not in the sticky cache) → page scheduled; and how many of those tasks went to the
  worker's sticky queue (cached) or the normal one (replayed);
- the worker's and the server's CPU seconds over the escalation burst;
- the same burst on a bare Temporal workflow (bench.bare.BareEscalation: a notice at open, a
  timer, the page) in a worker process of its own with the same tuning, after ours, on the
  same server: its timers are due as far apart as ours were (each incident's escalation is
  due a fixed delay after its own start, so ours spread by how long the starts took).

The worker takes its options from the environment (ITSM_MAX_CACHED_WORKFLOWS, ...; see
worker/main.py), so a setting is tried as `ITSM_MAX_CACHED_WORKFLOWS=12000 python -m bench.scale`;
the result records the ITSM_ worker settings it ran with.

    .venv/bin/python -m bench.scale [--incidents 10000] [--escalations 1000]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from temporalio.exceptions import WorkflowAlreadyStartedError

from bench.throughput import RESULTS, cpu_seconds
from definitions import acme
from definitions.incident import EscalationPolicy, EscalationStep, StepKind
from itsmflow.app.ids import new_id
from itsmflow.app.incident_submit import build_incident
from worker.connect import connect
from worker.server import DevServer, find_binary, free_port, wait_until_ready
from workflows.incident_models import start_attributes as incident_attributes
from workflows.search_attributes import typed

PAGE = "escalation.1.step2"


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


WORKER_SETTINGS = ("ITSM_MAX_CACHED_WORKFLOWS", "ITSM_MAX_CONCURRENT_WORKFLOW_TASKS", "ITSM_WORKFLOW_TASK_POLLERS",
                   "ITSM_MAX_CONCURRENT_ACTIVITIES", "ITSM_ACTIVITY_TASK_POLLERS", "ITSM_ACTIVITY_THREADS",
                   "ITSM_STICKY_SCHEDULE_TO_START_TIMEOUT")  # worker/main.py TUNING


def stop(worker: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the worker has not shut down in 30 s (10,000 cached runs can
    take longer to drain than that): a slow shutdown must not lose the measurements."""
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def wall(command: list[str], env: dict, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - began)
        assert done.returncode == 0, done.stderr
    return statistics.median(times)


def escalation_policy(fire_in: timedelta):
    """acme-incident whose network escalation waits `fire_in`, then pages dave (step 2)."""
    base = acme.INCIDENT_POLICY
    steps = [EscalationStep(kind=StepKind.WAIT, duration=fire_in),
             EscalationStep(kind=StepKind.NOTIFY_USER, user="dave")]
    others = [p for p in base.escalation_policies if p.group != "network"]
    return base.model_copy(update={"escalation_policies": [
        EscalationPolicy(name="scale", group="network", steps=steps), *others]})


async def open_many(client, queue: str, count: int, label: str, policy_for=None, concurrency: int = 100,
                    settle: bool = False) -> list[str]:
    """`settle`: open as the CLI does, each start returning once the run is settled (its opening
    activities done), so at most `concurrency` opens are in flight and none waits in a backlog."""
    from itsmflow.app.ops import start_and_settle
    from workflows.incident_models import IncidentStatus

    limit = asyncio.Semaphore(concurrency)
    ids: list[str] = []

    async def one(index: int) -> None:
        async with limit:
            incident = build_incident(title=f"{label} {index}", ci="lb-01", impact=3, urgency=3, opened_by="erin")
            if policy_for is not None:
                incident = incident.model_copy(update={"policy": policy_for()})
            while True:  # ids are INC-<date>-XXXX: at this volume some collide, as the CLI retries
                try:
                    if settle:
                        await start_and_settle(client, "IncidentWorkflow", incident, id=incident.id, task_queue=queue,
                                               attributes=incident_attributes(incident),
                                               memo={"title": incident.title}, result_type=IncidentStatus)
                    else:
                        await client.start_workflow("IncidentWorkflow", incident, id=incident.id, task_queue=queue,
                                                    memo={"title": incident.title},
                                                    search_attributes=typed(incident_attributes(incident)))
                    break
                except WorkflowAlreadyStartedError:
                    incident = incident.model_copy(update={"id": new_id("INC")})
            ids.append(incident.id)

    await asyncio.gather(*(one(i) for i in range(count)))
    return ids


async def until_idle(pid: int, deadline: datetime, busy: float = 0.15, window: float = 2.0) -> bool:
    """Wait until the process uses under `busy` of a core over `window` seconds (its backlog
    done), or until `deadline`; True when it went idle."""
    while datetime.now(timezone.utc) + timedelta(seconds=window) < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if (cpu_seconds(pid) - before) / window < busy:
            return True
    return False


def outbox_keys(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines()] if path.exists() else []


async def wait_for_notices(path: Path, wanted, count: int, timeout: float) -> None:
    """Wait until `count` outbox keys satisfy `wanted(key)`."""
    began = time.monotonic()
    while (seen := sum(1 for key in outbox_keys(path) if wanted(key))) < count:
        assert time.monotonic() - began < timeout, f"only {seen}/{count} notices"
        await asyncio.sleep(1)


def is_page(event) -> bool:
    """The escalation page: an activity scheduled with the page's key in its input, or (a run on
    `itsm-baseline-2`) a local activity whose result names that key. A local page's marker is
    recorded when the workflow task that ran it completes, as a scheduled activity's event is."""
    from itsmflow.app.audit import local_activity

    if event.HasField("activity_task_scheduled_event_attributes"):
        return f":{PAGE}".encode() in event.activity_task_scheduled_event_attributes.input.payloads[0].data
    if local_activity(event) is None:
        return False
    result = event.marker_recorded_event_attributes.details.get("result")
    return result is not None and bool(result.payloads) and f":{PAGE}".encode() in result.payloads[0].data


async def lateness(client, ids: list[str]) -> tuple[list[float], list[float], dict]:
    """Per fired timer: fired − due. Per escalation page: scheduled − due of the timer that woke
    it, and its parts: the workflow task after the timer (fired → scheduled → started →
    completed, the last attempt when one failed or timed out) and the page's scheduling."""
    from temporalio.api.enums.v1 import EventType, TaskQueueKind

    timers, pages = [], []
    parts: dict[str, list[float]] = {"timer_fired": [], "task_scheduled": [], "task_retried": [],
                                     "schedule_to_start": [], "start_to_complete": [], "page_after_task": []}
    queues = {"sticky": 0, "normal": 0}
    dues: list[datetime] = []
    for run_id in ids:
        started: dict[int, datetime] = {}
        due = fired = first_scheduled = None
        task: dict[str, datetime] = {}
        sticky = False
        async for event in client.get_workflow_handle(run_id).fetch_history_events():
            moment = event.event_time.ToDatetime(tzinfo=timezone.utc)
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_TIMER_STARTED:
                started[event.event_id] = moment + event.timer_started_event_attributes.start_to_fire_timeout \
                    .ToTimedelta()
            elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
                due = started[event.timer_fired_event_attributes.started_event_id]
                fired, first_scheduled, task = moment, None, {}
                timers.append((moment - due).total_seconds())
            elif due is None:
                continue
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                first_scheduled = first_scheduled or moment
                task = {"scheduled": moment}
                sticky = event.workflow_task_scheduled_event_attributes.task_queue.kind == \
                    TaskQueueKind.TASK_QUEUE_KIND_STICKY
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                task["started"] = moment
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                task["completed"] = moment
            elif kind in (EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventType.EVENT_TYPE_MARKER_RECORDED):
                if is_page(event):
                    pages.append((moment - due).total_seconds())
                    dues.append(due)
                    if fired is not None and first_scheduled is not None and len(task) == 3:
                        parts["timer_fired"].append((fired - due).total_seconds())
                        parts["task_scheduled"].append((first_scheduled - fired).total_seconds())
                        parts["task_retried"].append((task["scheduled"] - first_scheduled).total_seconds())
                        parts["schedule_to_start"].append((task["started"] - task["scheduled"]).total_seconds())
                        parts["start_to_complete"].append((task["completed"] - task["started"]).total_seconds())
                        parts["page_after_task"].append((moment - task["completed"]).total_seconds())
                        queues["sticky" if sticky else "normal"] += 1
                    due = None
    breakdown = {name: {"p50_s": round(percentile(values, 50), 3), "p99_s": round(percentile(values, 99), 3),
                        "max_s": round(max(values), 3)} for name, values in parts.items() if values}
    return timers, pages, {"parts": breakdown, "task_queue": queues, "dues": sorted(dues)}


def spread(dues: list[datetime]) -> dict:
    """How far apart the pages' timers were due: each incident's escalation is due `fire_in`
    after its own start, so they spread by how long the starts took."""
    offsets = [(due - dues[0]).total_seconds() for due in dues]
    return {"p1_to_p99_s": round(percentile(offsets, 99) - percentile(offsets, 1), 3), "max_s": round(offsets[-1], 3)}


async def warm_others(client, ids: list[str], concurrency: int = 50) -> None:
    """Query every run in `ids`, so the worker's sticky cache holds them (the most recently
    used), not the escalating runs opened after them: the escalations then wake cold, as they
    would among many open runs in a deployment."""
    limit = asyncio.Semaphore(concurrency)

    async def one(run_id: str) -> None:
        async with limit:
            await client.get_workflow_handle(run_id).query("status")

    await asyncio.gather(*(one(run_id) for run_id in ids))


async def bare_escalations(client, address: str, offsets: list[float], env: dict,
                           lead: float) -> tuple[dict, list[str]]:
    """The same burst on bench.bare.BareEscalation, in a worker process of its own with the same
    tuning: a run per offset, its timer due that many seconds after the first one (ours' dues,
    so both bursts are as tight)."""
    from bench.bare import BareEscalation

    queue = f"bare-{uuid.uuid4()}"
    worker = subprocess.Popen([sys.executable, "-m", "bench.bare_worker", "--address", address, "--task-queue", queue],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        count = len(offsets)
        due = datetime.now(timezone.utc) + timedelta(seconds=lead)
        limit = asyncio.Semaphore(100)
        handles = []

        async def one(index: int) -> None:
            async with limit:
                at = due + timedelta(seconds=offsets[index])
                handles.append(await client.start_workflow(BareEscalation.run, args=[at.isoformat(), PAGE],
                                                           id=f"bare-escalation-{index}-{uuid.uuid4()}",
                                                           task_queue=queue))

        await asyncio.gather(*(one(i) for i in range(count)))
        await until_idle(worker.pid, due - timedelta(seconds=1))
        assert datetime.now(timezone.utc) < due, "the bare escalations fired before all were open"
        await asyncio.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds() - 1))
        cpu_before = cpu_seconds(worker.pid)
        # Polled once a second, as ours are (the outbox): a result() per run would hold `count`
        # long polls on the server, each woken by every event of its run.
        began, query = time.monotonic(), f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
        while (await client.count_workflows(query)).count:
            assert time.monotonic() - began < 600, "the bare escalations did not finish"
            await asyncio.sleep(1)
        cpu = cpu_seconds(worker.pid) - cpu_before
        return {"worker_cpu_ms_per_escalation": round(cpu / count * 1000, 1)}, [h.id for h in handles]
    finally:
        stop(worker)


async def main(total: int, escalations: int, cold: bool = False, bare: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        server = DevServer(port=free_port(), db=home / "temporal.db", headless=True, http_port=free_port())
        process = server.spawn(detach=False)
        worker = None
        try:
            await wait_until_ready(server.address, 60, process)
            queue = f"scale-{uuid.uuid4()}"
            outbox = home / "outbox.jsonl"
            env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "ITSM_TASK_QUEUE": queue,
                   "ITSM_DB_URL": f"sqlite:///{home / 'cmdb.sqlite3'}", "ITSM_OUTBOX": str(outbox),
                   "ITSM_HOME": str(home)}
            env.pop("ITSM_SMTP_HOST", None)
            worker = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = await connect(target_host=server.address)

            began = time.monotonic()
            background = await open_many(client, queue, total - escalations, "scale")
            await wait_for_notices(outbox, lambda k: k.endswith(":opened"), total - escalations, timeout=3600)
            background_s = time.monotonic() - began

            # E incidents whose first escalation is due at (about) the same second. Each is due
            # `fire_in` after its own start, so they are opened as the CLI does (each returning
            # once settled, 20 at a time), never queued behind a backlog that would spread their
            # dues, and after the worker has worked off the others' opening (their problem's
            # signals). The lead covers opening them at half the rate the others opened at
            # (and querying the others, when cold): escalations firing while incidents still
            # open would measure the opening's backlog, not the escalations'.
            await until_idle(worker.pid, datetime.now(timezone.utc) + timedelta(seconds=600))
            rate = (total - escalations) / background_s if total > escalations else 10.0
            lead = 30 + 2 * escalations / rate + (len(background) / 40 if cold else 0)
            fire_at = datetime.now(timezone.utc) + timedelta(seconds=lead)
            def policy_now():
                return escalation_policy(fire_at - datetime.now(timezone.utc))

            began = time.monotonic()
            ids = await open_many(client, queue, escalations, "escalating", policy_for=policy_now, concurrency=20,
                                  settle=True)
            await wait_for_notices(outbox, lambda k: k.endswith(":opened"), total, timeout=3600)
            escalations_open_s = time.monotonic() - began
            if cold:
                await warm_others(client, background)
            idle_before_fire = await until_idle(worker.pid, fire_at - timedelta(seconds=1))
            assert datetime.now(timezone.utc) < fire_at, "the escalations fired before all were open"
            await asyncio.sleep(max(0.0, (fire_at - datetime.now(timezone.utc)).total_seconds() - 1))
            cpu_before = cpu_seconds(worker.pid), cpu_seconds(process.pid)
            burst_began = time.monotonic()
            escalating = set(ids)
            await wait_for_notices(outbox, lambda k: k.endswith(PAGE) and k.split(":")[0] in escalating, escalations,
                                   timeout=600)
            burst_s = time.monotonic() - burst_began
            worker_cpu, server_cpu = (cpu_seconds(worker.pid) - cpu_before[0],
                                      cpu_seconds(process.pid) - cpu_before[1])
            rss, peak = rss_mb(worker.pid)

            itsm_list = wall([sys.executable, "-m", "cli.main", "incident", "list"], env)
            go_list = wall([find_binary("temporal"), "workflow", "list", "--address", server.address, "--limit", "50",
                            "--query", "ItsmProcess='incident'"], env)
            timers, pages, breakdown = await lateness(client, ids)
            if bare:
                offsets = [(due - breakdown["dues"][0]).total_seconds() for due in breakdown["dues"]]
                bare_cpu, bare_ids = await bare_escalations(client, server.address, offsets, env,
                                                            30 + 2 * escalations / rate)
                _, bare_pages, bare_breakdown = await lateness(client, bare_ids)
        finally:
            if worker is not None:
                stop(worker)
            server.stop()
    return {
        "benchmark": "scale", "open_incidents": total, "concurrent_escalations": escalations,
        "open_seconds": round(background_s, 1), "escalations_open_seconds": round(escalations_open_s, 1),
        "worker_idle_before_fire": idle_before_fire,
        "itsm_incident_list_s": round(itsm_list, 3), "bare_temporal_workflow_list_s": round(go_list, 3),
        "list_ratio": round(itsm_list / go_list, 2),
        "worker_rss_mb": round(rss), "worker_peak_rss_mb": round(peak),
        "timer_lateness_p50_s": round(percentile(timers, 50), 3), "timer_lateness_p99_s": round(percentile(timers,
                                                                                                           99), 3),
        "timer_lateness_max_s": round(max(timers), 3), "timers_measured": len(timers),
        "page_scheduled_p50_s_after_due": round(percentile(pages, 50), 3) if pages else None,
        "page_scheduled_p99_s_after_due": round(percentile(pages, 99), 3) if pages else None,
        "pages_measured": len(pages),
        "page_lateness_breakdown": breakdown["parts"], "page_task_queue": breakdown["task_queue"],
        "page_timers_due_spread": spread(breakdown["dues"]),
        "burst_wall_s": round(burst_s, 1), "burst_worker_cpu_s": round(worker_cpu, 1),
        "burst_server_cpu_s": round(server_cpu, 1),
        "burst_worker_cpu_ms_per_escalation": round(worker_cpu / escalations * 1000, 1),
        "cold": cold,
        **({"bare_page_scheduled_p50_s_after_due": round(percentile(bare_pages, 50), 3),
            "bare_page_scheduled_p99_s_after_due": round(percentile(bare_pages, 99), 3),
            "bare_page_lateness_breakdown": bare_breakdown["parts"],
            "bare_page_task_queue": bare_breakdown["task_queue"],
            "bare_page_timers_due_spread": spread(bare_breakdown["dues"]),
            "bare_burst_worker_cpu_ms_per_escalation": bare_cpu["worker_cpu_ms_per_escalation"]} if bare else {}),
        "worker_settings": {name: os.environ[name] for name in WORKER_SETTINGS if name in os.environ},
        "targets": "list < 1 s, worker RSS < 1 GB, timer lateness p99 < 1 s, page scheduled p99 < 1 s after due",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--escalations", type=int, default=1_000)
    parser.add_argument("--cold", action="store_true",
                        help="query every other incident before the escalations fire, so those runs hold the worker's "
                             "sticky cache and the escalating ones wake cold (replaying their histories)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Temporal escalation burst")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json", help="where to write the result")
    options = parser.parse_args()
    outcome = asyncio.run(main(options.incidents, options.escalations, options.cold, not options.no_bare))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
    sys.stdout.flush()
    os._exit(0)
