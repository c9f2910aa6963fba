"""Incidents opened → acknowledged → resolved per second through our worker, against two
bare Temporal baselines on the same embedded dev server in the same run:

- fair (bench.bare.BareIncident): ours in shape, the same five side effects as local
  activities (as ours runs them on `itsm-baseline-2`) and the updates settle (with the
  start), acknowledge and resolve, open and resolve returning once their side effects are done;
- minimal (bench.bare.MinimalIncident): a plain start, updates ack and resolve, two
  activities (the page at open, the record at resolve);
- and, for comparison with earlier figures, fair_remote (bench.bare.BareRemoteIncident): the
  fair shape with (remote) activities, as ours ran them on `itsm-baseline-1`;
- fair_unsandboxed: the fair workflow outside the SDK's sandbox, as ours runs (worker/runner.py).
  The baselines above run in the sandbox, as the SDK ships a worker;
- fair_publishing (bench.bare.BarePublishingIncident): the fair shape plus what ours keeps on the
  server besides side effects and updates (a search attribute and a memo upserted per workflow
  task, a patch marker, its timers, payloads of our sizes, open after resolve): how far bare
  Temporal itself gets with the product's visibility.

The baselines run on a client with temporalio's stock pydantic converter, as a bare Temporal
worker would; ours on its own (worker/converter.py).

Ours runs on a CMDB whose problem policy never suggests a problem (`suggest_after` 10**6): every
incident is on web-01, and with the default policy each one after the third on a CI joins the
CI's problem (a signal to the problem, and the problem's own workflow task), work the baselines
do not model. `ours_recurring` measures that too, with the default policy.

Prints the ratios (targets: ours >= 0.8x minimal, >= 0.9x fair) and the history events of
one run of each, with a breakdown of ours by event type and by step, and the CPU per incident
of this process (the client and the workers) and of the dev server.

    .venv/bin/python -m bench.throughput [--incidents 60] [--concurrency 20] [--rounds 10]"""

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
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.channels import OutboxChannel
from activities.db import Database
from bench.bare import (
    BareIncident,
    BarePublishingIncident,
    BareRemoteIncident,
    MinimalIncident,
    _BareShape,
    bare_side_effect,
)
from itsmflow.app import incident_ops
from itsmflow.app.incident_submit import build_incident
from worker.connect import connect
from worker.main import build_worker, problem_policy_from_env
from worker.server import DevServer, free_port, wait_until_ready
from workflows.incident_models import IncidentResolveInput
from workflows.models import ActorInput

RESULTS = Path(__file__).parent / "results"


async def run_ours(client, queue: str, count: int, concurrency: int, ids: list[str]) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            incident = build_incident(title=f"bench {index}", ci="web-01", impact=3, urgency=3, opened_by="erin")
            status, _ = await incident_ops.open_incident(client, incident, queue)
            await incident_ops.update(client, status.id, "acknowledge", ActorInput(actor="frank"))
            await incident_ops.update(client, status.id, "resolve", IncidentResolveInput(actor="frank", code="bench"))
            ids.append(status.id)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - began)


async def run_bare(client, queue: str, count: int, concurrency: int, ids: list[str],
                   shape: type[_BareShape] = BareIncident) -> float:
    """The fair baselines: update-with-start of settle, then acknowledge and resolve."""
    from temporalio.client import WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy

    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            workflow_id = f"bare-{uuid.uuid4()}"
            start = WithStartWorkflowOperation(shape.run, shape.input(workflow_id), id=workflow_id, task_queue=queue,
                                               id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                                               **shape.start_options())
            await client.execute_update_with_start_workflow(shape.settle, start_workflow_operation=start)
            handle = client.get_workflow_handle(workflow_id)
            await handle.execute_update(shape.acknowledge, "frank")
            await handle.execute_update(shape.resolve, "frank")
            ids.append(workflow_id)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - began)


async def run_bare_remote(client, queue: str, count: int, concurrency: int, ids: list[str]) -> float:
    return await run_bare(client, queue, count, concurrency, ids, BareRemoteIncident)


async def run_bare_publishing(client, queue: str, count: int, concurrency: int, ids: list[str]) -> float:
    return await run_bare(client, queue, count, concurrency, ids, BarePublishingIncident)


async def run_minimal(client, queue: str, count: int, concurrency: int, ids: list[str]) -> float:
    """The minimal baseline: a plain start, then acknowledge and resolve (which returns once the
    record activity is done and the run has ended)."""
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            workflow_id = f"minimal-{uuid.uuid4()}"
            handle = await client.start_workflow(MinimalIncident.run, workflow_id, id=workflow_id, task_queue=queue)
            await handle.execute_update(MinimalIncident.acknowledge, "frank")
            await handle.execute_update(MinimalIncident.resolve, "frank")
            ids.append(workflow_id)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - began)


RUNNERS = {"ours": run_ours, "fair": run_bare, "minimal": run_minimal, "fair_remote": run_bare_remote,
           "ours_recurring": run_ours, "fair_unsandboxed": run_bare, "fair_publishing": run_bare_publishing}
OURS = ("ours", "ours_recurring")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event_name(event) -> str:
    from temporalio.api.enums.v1 import EventType

    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def event_label(event) -> str:
    """The event type, told apart where one type does several jobs: patch markers from local
    activities, the SDK's TemporalChangeVersion upserts (one per patch) from ours, each
    update by name."""
    name = event_name(event)
    if event.HasField("marker_recorded_event_attributes"):
        marker = event.marker_recorded_event_attributes.marker_name
        return {"core_patch": "MARKER_RECORDED (patch)",
                "core_local_activity": "MARKER_RECORDED (local activity)"}.get(marker, f"MARKER_RECORDED ({marker})")
    if event.HasField("upsert_workflow_search_attributes_event_attributes"):
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        return f"{name} (TemporalChangeVersion, a patch)" if set(fields) == {"TemporalChangeVersion"} else name
    if event.HasField("workflow_properties_modified_event_attributes"):
        return f"{name} (memo)"
    if event.HasField("workflow_execution_update_accepted_event_attributes"):
        return f"{name} ({event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name})"
    if event.HasField("activity_task_scheduled_event_attributes"):
        return f"{name} ({event.activity_task_scheduled_event_attributes.activity_type.name})"
    return name


def steps_of(events) -> dict[str, int]:
    """Events per step: open up to the workflow task that took the acknowledge update, then
    acknowledge up to the one that took resolve, then resolve."""
    cuts, last_scheduled = [], 0
    for index, event in enumerate(events):
        if event_name(event) == "WORKFLOW_TASK_SCHEDULED":
            last_scheduled = index
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            if event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name in (
                    "acknowledge", "resolve"):
                cuts.append(last_scheduled)
    bounds = [0, *cuts, len(events)]
    names = ["open", "acknowledge", "resolve"][:len(bounds) - 1]
    return {name: bounds[i + 1] - bounds[i] for i, name in enumerate(names)}


async def histories(client, ids: dict[str, str]) -> dict:
    """One run of each: its event count, and for ours the events by type and by step."""
    out: dict = {}
    for name, run_id in ids.items():
        events = (await client.get_workflow_handle(run_id).fetch_history()).events
        out[name] = {"events": len(events), "ended": event_name(events[-1]).startswith("WORKFLOW_EXECUTION_"),
                     "by_type": dict(Counter(event_label(e) for e in events).most_common()),
                     "by_step": steps_of(events)}
    return out


async def main(count: int, concurrency: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = DevServer(port=free_port(), db=Path(folder) / "temporal.db", headless=True, http_port=free_port())
        process = server.spawn(detach=False)
        try:
            await wait_until_ready(server.address, 60, process)
            client = await connect(target_host=server.address)
            bare = await Client.connect(server.address, data_converter=pydantic_data_converter)
            queues = {name: f"{name}-{uuid.uuid4()}" for name in RUNNERS}
            db = Database(f"sqlite:///{folder}/cmdb.sqlite3")
            recurring_db = Database(f"sqlite:///{folder}/cmdb-recurring.sqlite3")
            never = problem_policy_from_env().model_copy(update={"suggest_after": 10**6})
            async with build_worker(client, queues["ours"], db=db, problem_policy=never,
                                    channel=OutboxChannel(Path(folder) / "out.jsonl")), \
                    build_worker(client, queues["ours_recurring"], db=recurring_db,
                                 channel=OutboxChannel(Path(folder) / "out-recurring.jsonl")), \
                    Worker(bare, task_queue=queues["fair"], workflows=[BareIncident], activities=[bare_side_effect],
                           activity_executor=ThreadPoolExecutor(16)), \
                    Worker(bare, task_queue=queues["minimal"], workflows=[MinimalIncident],
                           activities=[bare_side_effect], activity_executor=ThreadPoolExecutor(16)), \
                    Worker(bare, task_queue=queues["fair_remote"], workflows=[BareRemoteIncident],
                           activities=[bare_side_effect], activity_executor=ThreadPoolExecutor(16)), \
                    Worker(bare, task_queue=queues["fair_unsandboxed"], workflows=[BareIncident],
                           activities=[bare_side_effect], activity_executor=ThreadPoolExecutor(16),
                           workflow_runner=UnsandboxedWorkflowRunner()), \
                    Worker(bare, task_queue=queues["fair_publishing"], workflows=[BarePublishingIncident],
                           activities=[bare_side_effect], activity_executor=ThreadPoolExecutor(16)):
                for name, runner in RUNNERS.items():  # warm up each
                    await runner(client if name in OURS else bare, queues[name], 5, concurrency, [])
                rates: dict[str, list[float]] = {name: [] for name in RUNNERS}
                cpu: dict[str, list[float]] = {name: [] for name in RUNNERS}  # this process: client + the workers
                server_cpu: dict[str, list[float]] = {name: [] for name in RUNNERS}  # the dev server
                ids: dict[str, list[str]] = {name: [] for name in RUNNERS}
                names = list(RUNNERS)
                for round_number in range(rounds):  # rotate the order, so server growth hits all alike
                    shift = round_number % len(names)
                    for name in names[shift:] + names[:shift]:
                        began, server_began = time.process_time(), cpu_seconds(process.pid)
                        rates[name].append(await RUNNERS[name](client if name in OURS else bare, queues[name], count,
                                                               concurrency, ids[name]))
                        cpu[name].append((time.process_time() - began) / count * 1000)
                        server_cpu[name].append((cpu_seconds(process.pid) - server_began) / count * 1000)
                events = await histories(client, {name: ids[name][-1] for name in RUNNERS})
        finally:
            server.stop()
    median = {name: statistics.median(values) for name, values in rates.items()}

    def paired(other: str) -> list[float]:  # each round's ours against that round's baseline
        return sorted(round(o / b, 2) for o, b in zip(rates["ours"], rates[other]))

    return {"benchmark": "throughput", "incidents": count, "concurrency": concurrency, "rounds": rounds,
            "itsm_incidents_per_second": round(median["ours"], 1),
            "fair_per_second": round(median["fair"], 1), "minimal_per_second": round(median["minimal"], 1),
            "ratio_ours_over_minimal": round(median["ours"] / median["minimal"], 2),
            "ratio_ours_over_fair": round(median["ours"] / median["fair"], 2),
            "round_ratios_over_minimal": paired("minimal"), "round_ratios_over_fair": paired("fair"),
            "ratio_ours_over_fair_remote": round(median["ours"] / median["fair_remote"], 2),
            "fair_remote_per_second": round(median["fair_remote"], 1),
            "ours_recurring_per_second": round(median["ours_recurring"], 1),
            "fair_unsandboxed_per_second": round(median["fair_unsandboxed"], 1),
            "ratio_ours_over_fair_unsandboxed": round(median["ours"] / median["fair_unsandboxed"], 2),
            "fair_publishing_per_second": round(median["fair_publishing"], 1),
            "ratio_ours_over_fair_publishing": round(median["ours"] / median["fair_publishing"], 2),
            "ratio_fair_publishing_over_fair": round(median["fair_publishing"] / median["fair"], 2),
            "ratio_ours_recurring_over_fair": round(median["ours_recurring"] / median["fair"], 2),
            "python_cpu_ms_per_incident": {name: round(statistics.median(values), 1) for name, values in cpu.items()},
            "server_cpu_ms_per_incident": {name: round(statistics.median(values), 1)
                                           for name, values in server_cpu.items()},
            "history_events_per_run": {name: h["events"] for name, h in events.items()},
            "history_note": "ours is still open when resolve returns (resolved, waiting out the reopen window); "
                            "the baselines have ended",
            "ours_events_by_type": events["ours"]["by_type"], "ours_events_by_step": events["ours"]["by_step"],
            "fair_events_by_type": events["fair"]["by_type"], "minimal_events_by_type": events["minimal"]["by_type"],
            "fair_remote_events_by_type": events["fair_remote"]["by_type"],
            "ours_recurring_events_by_type": events["ours_recurring"]["by_type"],
            "fair_publishing_events_by_type": events["fair_publishing"]["by_type"],
            "targets": "ours >= 0.8x minimal, ours >= 0.9x fair"}


def summary(outcome: dict) -> str:
    events = outcome["history_events_per_run"]
    lines = [f"ours {outcome['itsm_incidents_per_second']}/s, fair {outcome['fair_per_second']}/s, "
             f"minimal {outcome['minimal_per_second']}/s, fair_remote {outcome['fair_remote_per_second']}/s",
             f"ours / minimal = {outcome['ratio_ours_over_minimal']}x (target >= 0.8x), "
             f"ours / fair = {outcome['ratio_ours_over_fair']}x (target >= 0.9x), "
             f"ours / fair_remote = {outcome['ratio_ours_over_fair_remote']}x; incidents joining their CI's problem: "
             f"{outcome['ours_recurring_per_second']}/s, {outcome['ratio_ours_recurring_over_fair']}x fair; "
             f"fair outside the sandbox {outcome['fair_unsandboxed_per_second']}/s "
             f"({outcome['ratio_ours_over_fair_unsandboxed']}x)",
             f"fair with our visibility (memo and search attribute per task, marker, timers, sizes) "
             f"{outcome['fair_publishing_per_second']}/s: {outcome['ratio_fair_publishing_over_fair']}x fair; "
             f"ours / it = {outcome['ratio_ours_over_fair_publishing']}x",
             "CPU ms per incident, this process / the dev server: " + ", ".join(
                 f"{name} {outcome['python_cpu_ms_per_incident'][name]} / {outcome['server_cpu_ms_per_incident'][name]}"
                 for name in RUNNERS),
             "history events per run: " + ", ".join(f"{name} {count}" for name, count in events.items()),
             "ours by step: " + ", ".join(f"{k} {v}" for k, v in outcome["ours_events_by_step"].items()),
             "ours by type:", *(f"  {n:3d} {kind}" for kind, n in outcome["ours_events_by_type"].items())]
    return "\n".join(lines)


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
    print(summary(outcome))
    sys.stdout.flush()
    os._exit(0)
