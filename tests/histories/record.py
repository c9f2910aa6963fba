"""Record workflow histories for the replay tests.

    python -m tests.histories.record                 # every scenario, time-skipping server
    python -m tests.histories.record --from-server ID [--name NAME]   # a run on TEMPORAL_ADDRESS

Histories are the contract with running processes: re-record only when a change is
deliberately incompatible (and then it needs `workflow.patched`, see README)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.db import Database
from cli import change_ops
from definitions.change import ChangeType
from tests.conftest import RecordingChannel
from tests.workflows.helpers import approve, complete, running_worker, submit
from worker.connect import connect, register_search_attributes
from worker.server import find_binary
from workflows.change_models import CancelInput, Outcome, RejectInput

FOLDER = Path(__file__).parent


async def _low_risk_closed(env, tq):
    status = await submit(env, tq)
    await approve(env, status.id, "bob", "ok")
    await env.sleep(timedelta(hours=1, seconds=1))
    await complete(env, status.id, "erin")
    return status.id


async def _high_risk_quorum(env, tq):
    status = await submit(env, tq, cis=["db-prod-1"])
    for actor in ("bob", "carol", "dave"):
        await approve(env, status.id, actor)
    await env.sleep(timedelta(hours=1, seconds=1))
    await complete(env, status.id, "grace", outcome=Outcome.FAILED)
    return status.id


async def _rejected(env, tq):
    status = await submit(env, tq, cis=["lb-01"])
    await approve(env, status.id, "bob")
    await change_ops.update(env.client, status.id, "reject", RejectInput(actor="dave", reason="not now"))
    return status.id


async def _standard(env, tq):
    status = await submit(env, tq, cis=["web-02"], change_type=ChangeType.STANDARD, template="restart-web-server")
    await env.sleep(timedelta(hours=1, seconds=1))
    await complete(env, status.id, "frank")
    return status.id


async def _emergency_overrun(env, tq):
    status = await submit(env, tq, cis=["lb-01"], change_type=ChangeType.EMERGENCY, start_in=timedelta(0))
    await approve(env, status.id, "carol")
    await env.sleep(timedelta(hours=2))
    await complete(env, status.id, "dave", outcome=Outcome.BACKED_OUT)
    return status.id


async def _timed_out(env, tq):
    status = await submit(env, tq)
    await env.sleep(timedelta(hours=2))
    return status.id


async def _canceled_while_scheduled(env, tq):
    status = await submit(env, tq)
    await approve(env, status.id, "carol")
    await change_ops.update(env.client, status.id, "cancel", CancelInput(actor="alice", reason="moved"))
    return status.id


SCENARIOS = {
    "change-low-risk-closed": _low_risk_closed,
    "change-high-risk-quorum-failed": _high_risk_quorum,
    "change-rejected-at-cab": _rejected,
    "change-standard-closed": _standard,
    "change-emergency-overrun-backed-out": _emergency_overrun,
    "change-approval-timed-out": _timed_out,
    "change-canceled-while-scheduled": _canceled_while_scheduled,
}


async def record_scenarios() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, scenario in SCENARIOS.items():
                tq = f"record-{uuid.uuid4()}"
                db = Database(f"sqlite:///{tmp}/{name}.sqlite3")
                async with running_worker(env, tq, db, RecordingChannel()):
                    workflow_id = await scenario(env, tq)
                    await env.client.get_workflow_handle(workflow_id).result()
                    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                (FOLDER / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name} ({len(history.events)} events)")
    finally:
        await env.shutdown()


async def record_from_server(workflow_id: str, name: str) -> None:
    client = await connect()
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (FOLDER / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name} from {workflow_id} ({len(history.events)} events)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-server", metavar="ID")
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.from_server:
        asyncio.run(record_from_server(args.from_server, args.name or args.from_server))
    else:
        asyncio.run(record_scenarios())
