"""A worker process for the bare baselines (bench.bare), with the itsm worker's tuning from
the environment (ITSM_MAX_CACHED_WORKFLOWS, ...), so a bare baseline runs as ours does: in a
process of its own, with the same options.

    .venv/bin/python -m bench.bare_worker --address 127.0.0.1:7233 --task-queue bare"""

from __future__ import annotations

import argparse
import asyncio
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareEscalation, BareIncident, BareRemoteIncident, BareWeek, MinimalIncident, bare_side_effect
from worker.main import tuned_options


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    workflows = [BareIncident, BareRemoteIncident, MinimalIncident, BareWeek, BareEscalation]
    async with Worker(client, task_queue=task_queue, workflows=workflows, activities=[bare_side_effect],
                      **tuned_options({})):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    options = parser.parse_args()
    asyncio.run(main(options.address, options.task_queue))
