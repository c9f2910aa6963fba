"""Incidents opened → acknowledged → resolved per second through our worker, against a
bare Temporal workflow with the same number of activities and updates, on the same
embedded dev server in the same run.

    .venv/bin/python -m bench.throughput [--incidents 60] [--concurrency 20]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.worker import Worker

from activities.channels import OutboxChannel
from activities.db import Database
from bench.bare import BareIncident, bare_side_effect
from itsmflow.app import incident_ops
from itsmflow.app.incident_submit import build_incident
from worker.connect import connect
from worker.main import build_worker
from worker.server import DevServer, free_port, wait_until_ready
from workflows.incident_models import ActorInput, ResolveInput

RESULTS = Path(__file__).parent / "results"


async def run_ours(client, queue: str, count: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            incident = build_incident(title=f"bench {index}", ci="web-01", impact=3, urgency=3, opened_by="erin")
            status, _ = await incident_ops.open_incident(client, incident, queue)
            await incident_ops.update(client, status.id, "acknowledge", ActorInput(actor="frank"))
            await incident_ops.update(client, status.id, "resolve", ResolveInput(actor="frank", code="bench"))

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - began)


async def run_bare(client, queue: str, count: int, concurrency: int) -> float:
    from temporalio.client import WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy

    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            workflow_id = f"bare-{uuid.uuid4()}"
            start = WithStartWorkflowOperation(BareIncident.run, workflow_id, id=workflow_id, task_queue=queue,
                                               id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
            await client.execute_update_with_start_workflow(BareIncident.settle, start_workflow_operation=start)
            handle = client.get_workflow_handle(workflow_id)
            await handle.execute_update(BareIncident.acknowledge, "frank")
            await handle.execute_update(BareIncident.resolve, "frank")

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - began)


async def main(count: int, concurrency: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = DevServer(port=free_port(), db=Path(folder) / "temporal.db", headless=True, http_port=free_port())
        process = server.spawn(detach=False)
        try:
            await wait_until_ready(server.address, 60, process)
            client = await connect(target_host=server.address)
            ours_queue, bare_queue = f"ours-{uuid.uuid4()}", f"bare-{uuid.uuid4()}"
            db = Database(f"sqlite:///{folder}/cmdb.sqlite3")
            async with build_worker(client, ours_queue, db=db, channel=OutboxChannel(Path(folder) / "out.jsonl")), \
                    Worker(client, task_queue=bare_queue, workflows=[BareIncident], activities=[bare_side_effect],
                           activity_executor=__import__("concurrent.futures").futures.ThreadPoolExecutor(16)):
                await run_ours(client, ours_queue, 5, concurrency)  # warm up both
                await run_bare(client, bare_queue, 5, concurrency)
                ours_rounds, bare_rounds = [], []
                cpu: dict[str, list[float]] = {"ours": [], "bare": []}  # this process: client + both workers
                for round_number in range(rounds):  # alternate, so server growth hits both alike
                    pair = [(run_bare, bare_queue, bare_rounds, "bare"), (run_ours, ours_queue, ours_rounds, "ours")]
                    for runner, queue, results, name in (pair if round_number % 2 else pair[::-1]):
                        began = time.process_time()
                        results.append(await runner(client, queue, count, concurrency))
                        cpu[name].append((time.process_time() - began) / count * 1000)
                ours, bare = statistics.median(ours_rounds), statistics.median(bare_rounds)
        finally:
            server.stop()
    paired = sorted(o / b for o, b in zip(ours_rounds, bare_rounds))  # each round's ours vs its bare neighbour
    return {"benchmark": "throughput", "incidents": count, "concurrency": concurrency, "rounds": rounds,
            "itsm_incidents_per_second": round(ours, 1), "bare_per_second": round(bare, 1),
            "ratio": round(ours / bare, 2), "round_ratios": [round(r, 2) for r in paired],
            "python_cpu_ms_per_incident": {name: round(statistics.median(values), 1) for name, values in cpu.items()},
            "target": "ratio >= 0.9"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    outcome = asyncio.run(main(options.incidents, options.concurrency, options.rounds))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
    sys.stdout.flush()
    os._exit(0)
