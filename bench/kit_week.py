"""A 7-day process tested on the testing kit (itsmflow.testing), wall time against a bare
Temporal workflow of the same shape (timers and activities) in the same run: the access
review of examples/access-review, two grants, one revoked on day 2, the other escalated at
day 7 and the review closed incomplete at day 10, every step at its exact fake time.

    .venv/bin/python -m bench.kit_week [--rounds 3]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.incident_week import RESULTS, bare_week
from itsmflow.testing import ProcessHarness, time_skipping_server


async def review_week(server, folder: Path) -> tuple[float, dict]:
    async with ProcessHarness(server, folder) as itsm:
        began = time.perf_counter()
        alice_vpn = itsm.grant("alice", "grant_vpn", {"duration": 30})
        itsm.grant("frank", "grant_vpn")
        review = await itsm.start("access-review", {"title": "bench review", "attest_within": "7d", "grace": "3d"},
                                  as_user="grace")
        t0 = review.opened_at
        await itsm.sleep(timedelta(days=2))
        await itsm.act(review.id, "attest", {"grant": alice_vpn, "decision": "revoke"}, as_user="carol")
        await itsm.sleep_until(t0 + timedelta(days=7))
        itsm.outbox.expect("overdue.dave", to="dave", at=t0 + timedelta(days=7))
        await itsm.sleep_until(t0 + timedelta(days=10, seconds=1))
        final = await itsm.show(review.id)
        elapsed = time.perf_counter() - began
        history = await server.client.get_workflow_handle(review.id).fetch_history()
    from temporalio.api.enums.v1 import EventType as E

    kinds = [e.event_type for e in history.events]
    shape = {"timers": max(kinds.count(E.EVENT_TYPE_TIMER_STARTED), 1),
             "activities": kinds.count(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED), "events": len(kinds),
             "state": final.state.value, "notifications": len(itsm.outbox.sent)}
    return elapsed, shape


async def main(rounds: int) -> dict:
    ours, bare, shape = [], [], {}
    with tempfile.TemporaryDirectory() as folder:
        for index in range(rounds):  # a server per round, as the kit gives each test its own
            server = await time_skipping_server()
            try:
                (Path(folder) / str(index)).mkdir()
                seconds, shape = await review_week(server, Path(folder) / str(index))
                ours.append(seconds)
                bare.append(await bare_week(server, shape))
            finally:
                await server.shutdown()
    return {"benchmark": "kit_week", "rounds": rounds, "shape": shape,
            "kit_seconds_median": round(statistics.median(ours), 3),
            "bare_seconds_median": round(statistics.median(bare), 3),
            "ratio_kit_over_bare": round(statistics.median(ours) / statistics.median(bare), 2),
            "note": "wall time of a 10-day review on the testing kit, reported, never asserted"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    outcome = asyncio.run(main(parser.parse_args().rounds))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kit_week.json").write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
    sys.stdout.flush()
    os._exit(0)
