"""Scale: N open incidents on the embedded dev server, one `itsm worker` process.

Measures, in one run on the same server:
- `itsm incident list` (first page) wall time, against Go `temporal workflow list` of the
  same page (the bare baseline);
- the worker process's RSS (current and peak) with every incident open;
- timer lateness with E escalations due at the same second: TimerFired time minus
  (TimerStarted time + timeout), from the histories, and how late the page activity was
  scheduled after the intended moment (timer + the worker's workflow task).

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

from bench.throughput import RESULTS
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


async def open_many(client, queue: str, count: int, label: str, policy_for=None, concurrency: int = 100) -> list[str]:
    limit = asyncio.Semaphore(concurrency)
    ids: list[str] = []

    async def one(index: int) -> None:
        async with limit:
            incident = build_incident(title=f"{label} {index}", ci="lb-01", impact=3, urgency=3, opened_by="erin")
            if policy_for is not None:
                incident = incident.model_copy(update={"policy": policy_for()})
            while True:  # ids are INC-<date>-XXXX: at this volume some collide, as the CLI retries
                try:
                    await client.start_workflow("IncidentWorkflow", incident, id=incident.id, task_queue=queue,
                                                memo={"title": incident.title},
                                                search_attributes=typed(incident_attributes(incident)))
                    break
                except WorkflowAlreadyStartedError:
                    incident = incident.model_copy(update={"id": new_id("INC")})
            ids.append(incident.id)

    await asyncio.gather(*(one(i) for i in range(count)))
    return ids


def outbox_keys(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines()] if path.exists() else []


async def wait_for_notices(path: Path, wanted, count: int, timeout: float) -> None:
    """Wait until `count` outbox keys satisfy `wanted(key)`."""
    began = time.monotonic()
    while (seen := sum(1 for key in outbox_keys(path) if wanted(key))) < count:
        assert time.monotonic() - began < timeout, f"only {seen}/{count} notices"
        await asyncio.sleep(1)


async def lateness(client, ids: list[str]) -> tuple[list[float], list[float]]:
    """Per fired timer: fired − due. Per escalation page: scheduled − due of the timer that woke it."""
    from temporalio.api.enums.v1 import EventType

    timers, pages = [], []
    for run_id in ids:
        started: dict[int, datetime] = {}
        due = None
        async for event in client.get_workflow_handle(run_id).fetch_history_events():
            moment = event.event_time.ToDatetime(tzinfo=timezone.utc)
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                started[event.event_id] = moment + event.timer_started_event_attributes.start_to_fire_timeout \
                    .ToTimedelta()
            elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                due = started[event.timer_fired_event_attributes.started_event_id]
                timers.append((moment - due).total_seconds())
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and due is not None:
                if f":{PAGE}".encode() in event.activity_task_scheduled_event_attributes.input.payloads[0].data:
                    pages.append((moment - due).total_seconds())
    return timers, pages


async def main(total: int, escalations: int) -> dict:
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
            await open_many(client, queue, total - escalations, "scale")
            await wait_for_notices(outbox, lambda k: k.endswith(":opened"), total - escalations, timeout=3600)
            background_s = time.monotonic() - began

            # E incidents whose first escalation is due at the same second, 30 s + start time ahead.
            fire_at = datetime.now(timezone.utc) + timedelta(seconds=30 + escalations / 50)
            def policy_now():
                return escalation_policy(fire_at - datetime.now(timezone.utc))

            ids = await open_many(client, queue, escalations, "escalating", policy_for=policy_now)
            await wait_for_notices(outbox, lambda k: k.endswith(":opened"), total, timeout=3600)
            await asyncio.sleep(max(0.0, (fire_at - datetime.now(timezone.utc)).total_seconds()))
            escalating = set(ids)
            await wait_for_notices(outbox, lambda k: k.endswith(PAGE) and k.split(":")[0] in escalating, escalations,
                                   timeout=600)
            rss, peak = rss_mb(worker.pid)

            itsm_list = wall([sys.executable, "-m", "cli.main", "incident", "list"], env)
            go_list = wall([find_binary("temporal"), "workflow", "list", "--address", server.address, "--limit", "50",
                            "--query", "ItsmProcess='incident'"], env)
            timers, pages = await lateness(client, ids)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            server.stop()
    return {
        "benchmark": "scale", "open_incidents": total, "concurrent_escalations": escalations,
        "open_seconds": round(background_s, 1),
        "itsm_incident_list_s": round(itsm_list, 3), "bare_temporal_workflow_list_s": round(go_list, 3),
        "list_ratio": round(itsm_list / go_list, 2),
        "worker_rss_mb": round(rss), "worker_peak_rss_mb": round(peak),
        "timer_lateness_p50_s": round(percentile(timers, 50), 3), "timer_lateness_p99_s": round(percentile(timers,
                                                                                                           99), 3),
        "timer_lateness_max_s": round(max(timers), 3), "timers_measured": len(timers),
        "page_scheduled_p99_s_after_due": round(percentile(pages, 99), 3) if pages else None,
        "pages_measured": len(pages),
        "targets": "list < 1 s, worker RSS < 1 GB, timer lateness p99 < 1 s",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--escalations", type=int, default=1_000)
    options = parser.parse_args()
    outcome = asyncio.run(main(options.incidents, options.escalations))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
    sys.stdout.flush()
    os._exit(0)
