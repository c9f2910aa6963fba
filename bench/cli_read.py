"""`itsm runs show ID` against the Go `temporal workflow describe -w ID` on the same run of
the same embedded dev server, in one run.

    .venv/bin/python -m bench.cli_read [--rounds 15]"""

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
from datetime import datetime, timedelta, timezone
from pathlib import Path

from definitions import registry
from definitions.change import ChangeType
from itsmflow.app import change_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from worker.main import build_worker
from worker.server import DevServer, find_binary, free_port, wait_until_ready
from workflows.change_models import CompleteInput, Outcome

RESULTS = Path(__file__).parent / "results"


async def one_closed_change(address: str, folder: str) -> str:
    from activities.channels import OutboxChannel
    from activities.db import Database
    from worker.connect import connect

    client = await connect(target_host=address)
    queue = "bench-read"
    async with build_worker(client, queue, db=Database(f"sqlite:///{folder}/cmdb.sqlite3"),
                            channel=OutboxChannel(Path(folder) / "outbox.jsonl")):
        now = datetime.now(timezone.utc)
        change = build_change(change_id=new_id("CHG"), title="bench", cis=["web-01"], change_type=ChangeType.STANDARD,
                              template="restart-web-server", start=now, end=now + timedelta(minutes=30),
                              requested_by="alice", now=now, policy=registry.get("acme-demo"))
        status = await change_ops.submit(client, change, queue)
        while (await change_ops.status(client, status.id)).state.value != "implement":
            await asyncio.sleep(0.2)
        await change_ops.update(client, status.id, "complete", CompleteInput(actor="frank", outcome=Outcome.SUCCESSFUL))
        return status.id


def timed(command: list[str], env: dict, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main(rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = DevServer(port=free_port(), db=Path(folder) / "temporal.db", headless=True, http_port=free_port())
        process = server.spawn(detach=False)
        try:
            asyncio.run(wait_until_ready(server.address, 60, process))
            run_id = asyncio.run(one_closed_change(server.address, folder))
            env = {**os.environ, "TEMPORAL_ADDRESS": server.address,
                   "ITSM_HTTP_ADDRESS": f"http://127.0.0.1:{server.http_port}"}
            full_env = {**env, "ITSM_HTTP_ADDRESS": "http://127.0.0.1:1"}  # refused: the full client path
            itsm = [str(Path(sys.executable).parent / "itsm"), "runs", "show", run_id]
            go = [find_binary(), "workflow", "describe", "-w", run_id, "--address", server.address]
            timed(itsm, env, 2), timed(go, env, 2)  # warm the page cache
            ours, theirs = timed(itsm, env, rounds), timed(go, env, rounds)
            full = timed(itsm, full_env, rounds)
        finally:
            server.stop()
    return {"benchmark": "cli_read", "rounds": rounds, "itsm_runs_show_seconds": round(ours, 3),
            "itsm_runs_show_full_client_seconds": round(full, 3),
            "temporal_workflow_describe_seconds": round(theirs, 3), "ratio": round(ours / theirs, 2),
            "target": "ratio <= 1.0"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    outcome = main(parser.parse_args().rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_read.json").write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
    sys.stdout.flush()
    os._exit(0)
