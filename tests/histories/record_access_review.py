"""Record the access-review package's history for the replay tests (the package is installed
by `make install`; its workflow is then one of the worker's):

    python -m tests.histories.record_access_review"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from itsmflow.testing import ProcessHarness, time_skipping_server

FOLDER = Path(__file__).parent


async def record() -> None:
    server = await time_skipping_server()
    try:
        with tempfile.TemporaryDirectory() as folder:
            async with ProcessHarness(server, Path(folder)) as itsm:
                alice_vpn = itsm.grant("alice", "grant_vpn", {"duration": 30})
                itsm.grant("frank", "grant_vpn")
                review = await itsm.start("access-review", {"title": "Q4 VPN review", "attest_within": "7d",
                                                            "grace": "3d"}, as_user="grace")
                await itsm.act(review.id, "attest", {"grant": alice_vpn, "decision": "revoke", "reason": "left"},
                               as_user="carol")
                await itsm.sleep(timedelta(days=10, minutes=1))  # frank's is escalated at 7d, closed at 10d
                history = await server.client.get_workflow_handle(review.id).fetch_history()
                (FOLDER / "access-review-revoked-escalated-incomplete.json").write_text(history.to_json())
                print(f"recorded access-review-revoked-escalated-incomplete ({len(history.events)} events)")
    finally:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
