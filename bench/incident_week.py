"""A full 7-day incident under time skipping, against a bare Temporal workflow with the
same number of timers and activities, measured in the same run.

    .venv/bin/python -m bench.incident_week [--rounds 3]

Prints wall seconds for each and the ratio; the issue's target is < 2 s for the incident
(escalations, SLA notices, a hold, resume and resolve across 7 fake days)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.channels import OutboxChannel
from activities.db import Database
from bench.bare import BareWeek, bare_side_effect
from itsmflow.app import incident_ops
from itsmflow.app.incident_submit import build_incident
from worker.main import build_worker
from worker.server import start_time_skipping
from workflows.incident_models import IncidentResolveInput
from workflows.models import ActorInput, ReasonInput

RESULTS = Path(__file__).parent / "results"


async def incident_week(env: WorkflowEnvironment, folder: str) -> tuple[float, dict]:
    queue = f"bench-{uuid.uuid4()}"
    db = Database(f"sqlite:///{folder}/{queue}.sqlite3")
    async with build_worker(env.client, queue, db=db, channel=OutboxChannel(Path(folder) / f"{queue}.jsonl")):
        started = time.perf_counter()
        incident = build_incident(title="bench", ci="lb-01", impact=2, urgency=2, opened_by="alice")
        status, _ = await incident_ops.open_incident(env.client, incident, queue)
        await env.sleep(timedelta(hours=3))
        await incident_ops.update(env.client, status.id, "acknowledge", ActorInput(actor="dave"))
        await incident_ops.update(env.client, status.id, "hold", ReasonInput(actor="dave", reason="vendor"))
        await env.sleep(timedelta(days=1))
        await incident_ops.update(env.client, status.id, "resume", ActorInput(actor="dave"))
        await env.sleep(timedelta(days=2))
        await incident_ops.update(env.client, status.id, "resolve", IncidentResolveInput(actor="dave", code="fixed"))
        await env.sleep(timedelta(days=4))
        final = await incident_ops.status(env.client, status.id)
        elapsed = time.perf_counter() - started
    history = await env.client.get_workflow_handle(status.id).fetch_history()
    kinds = [e.event_type for e in history.events]
    from temporalio.api.enums.v1 import EventType as E

    shape = {"timers": max(kinds.count(E.EVENT_TYPE_TIMER_STARTED), 1),
             "activities": kinds.count(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
             "events": len(kinds), "state": final.state.value,
             "sla_notices": sum(len(c.notices_sent) for c in final.sla.values())}
    return elapsed, shape


async def bare_week(env: WorkflowEnvironment, shape: dict) -> float:
    queue = f"bare-{uuid.uuid4()}"
    from concurrent.futures import ThreadPoolExecutor

    async with Worker(env.client, task_queue=queue, workflows=[BareWeek], activities=[bare_side_effect],
                      activity_executor=ThreadPoolExecutor(4)):
        started = time.perf_counter()
        await env.client.execute_workflow(BareWeek.run, shape, id=queue, task_queue=queue)
        return time.perf_counter() - started


async def main(rounds: int) -> dict:
    env = await start_time_skipping()
    ours, bare, shape = [], [], {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(rounds):
                seconds, shape = await incident_week(env, folder)
                ours.append(seconds)
                bare.append(await bare_week(env, shape))
    finally:
        await env.shutdown()
    result = {"benchmark": "incident_week", "rounds": rounds, "shape": shape,
              "itsm_seconds_median": round(statistics.median(ours), 3),
              "bare_seconds_median": round(statistics.median(bare), 3),
              "ratio_itsm_over_bare": round(statistics.median(ours) / statistics.median(bare), 2),
              "target": "itsm < 2.0 s"}
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    outcome = asyncio.run(main(parser.parse_args().rounds))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "incident_week.json").write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
