"""A process from an installed package (examples/access-review, issue 17) is first-class with
no code of its own outside its package and no ITSM_PROCESSES: found through its entry point, it
runs on a real worker through the generic CLI on a grant a real request fulfilled, appears in
`process list` and `runs list --process`, names its actors and its process in the audit export,
is counted in the KPIs, revokes the grant in the CMDB, and ITSM_AUTH verifies its actions."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.kit.test_external_process import cli
from worker.main import build_worker

PACKAGE = ""  # ITSM_PROCESSES: nothing but the installed packages (the built-ins and access-review)


async def installed(live, task_queue: str, *args: str):
    return await cli(live, task_queue, *args, processes=PACKAGE)


async def grant_of(db, grantee: str, timeout: float = 20.0) -> str:
    """The key of the grant a request item's automated task recorded for `grantee`."""
    deadline = time.monotonic() + timeout
    while True:
        with db.transaction() as cur:
            row = cur.one("SELECT idempotency_key FROM fulfillment_record WHERE subject = ? AND action = 'grant_vpn'",
                          (grantee,))
        if row:
            return row[0]
        assert time.monotonic() < deadline, f"no grant recorded for {grantee}"
        await asyncio.sleep(0.2)


async def test_an_installed_package_s_process_is_first_class(live, task_queue, db, channel, monkeypatch, tracked):
    monkeypatch.delenv("ITSM_PROCESSES", raising=False)
    listed = json.loads((await installed(live, task_queue, "process", "list", "--json")).stdout)["processes"]
    review = next(p for p in listed if p["name"] == "access-review")
    assert (review["prefix"], [a["name"] for a in review["actions"]]) == ("ARV", ["attest"])

    async with build_worker(live.client, task_queue, db=db, channel=channel):
        submitted = await installed(live, task_queue, "request", "submit", "vpn-access", "--var", "duration=30",
                                    "--var", "reason=remote work", "--as", "alice")
        assert submitted.returncode == 0, submitted.stderr
        request_id = submitted.stdout.strip()
        tracked.append(request_id)
        approved = await installed(live, task_queue, "request", "approve", request_id, "--as", "dave")
        assert approved.returncode == 0, approved.stderr
        grant = await grant_of(db, "alice")  # the VPN item's automated task, activities/fulfillment.py
        tracked.append(grant.partition(":")[0])  # the item: its grant expires in 30 days

        started = await installed(live, task_queue, "process", "start", "access-review", "--field",
                                  "title=Q4 access review", "--as", "grace")
        assert started.returncode == 0, started.stderr
        review_id = started.stdout.strip()
        tracked.append(review_id)
        assert review_id.startswith("ARV-")
        refused = await installed(live, task_queue, "process", "do", review_id, "attest", "--field", f"grant={grant}",
                                  "--field", "decision=keep", "--as", "erin")
        assert (refused.returncode, refused.stderr) == (
            2, f"itsm: erin may not attest {grant} (alice: vpn (30 days)): carol, alice's manager, attests it\n")
        memo = await (await live.client.get_workflow_handle(review_id).describe()).memo()
        assert memo["status"]["actions"] == [{"action": "attest", "groups": [], "users": ["carol"]}]
        revoked = await installed(live, task_queue, "process", "do", review_id, "attest", "--field", f"grant={grant}",
                                  "--field", "decision=revoke", "--field", "reason=no longer remote", "--as", "carol")
        assert revoked.stdout == f"{review_id} closed\n", revoked.stderr
        await live.client.get_workflow_handle(review_id).result()
    with db.transaction() as cur:
        assert cur.one("SELECT undone_at IS NOT NULL FROM fulfillment_record WHERE idempotency_key = ?",
                       (grant,)) == (1,)
    assert [s.split(":", 1)[1] for s in (m.key for m in channel.sent) if s.startswith(review_id)] == \
        ["attest.carol", "closed"]

    shown = json.loads((await installed(live, task_queue, "process", "show", review_id, "--json")).stdout)
    assert (shown["state"], shown["kept"], shown["revoked"], shown["unattested"]) == ("closed", [], [grant], [])
    for _ in range(50):  # visibility is eventually consistent
        runs = json.loads((await installed(live, task_queue, "runs", "list", "--process", "access-review",
                                           "--json")).stdout)
        if any(r["id"] == review_id and r["state"] == "closed" for r in runs):
            break
        await asyncio.sleep(0.2)
    assert any(r["id"] == review_id and r["state"] == "closed" and r["title"] == "Q4 access review" for r in runs), runs

    exported = await installed(live, task_queue, "audit", "export", review_id)
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {(r["actor"], r["channel"], r["process"], r["action"]) for r in rows} >= {
        ("grace", "cli", "access-review", "submitted"), ("carol", "cli", "access-review", "attest")}, rows
    assert {r["action"] for r in rows if r["actor"] == "system"} >= {"list_grants", "revoke_grant", "notify"}

    report = json.loads((await installed(live, task_queue, "report", "kpis", "--json")).stdout)
    assert report["processes"]["access-review"]["outcomes"].get("complete", 0) >= 1, report["processes"]


async def test_itsm_auth_verifies_the_package_s_actions(env, task_queue, db, channel, monkeypatch, keys, tracked):
    from temporalio.client import WorkflowUpdateFailedError

    from activities.fulfillment import FulfillmentActivities
    from activities.models import ActionInput
    from itsmflow.app import generic as app
    from itsmflow.processes import named
    from tests.worker.auth_helpers import keyring, signed_client

    monkeypatch.delenv("ITSM_PROCESSES", raising=False)
    grant = "RITM-20261124-AUTH:grant"
    FulfillmentActivities(db).run_action(ActionInput(key=grant, action="grant_vpn", item_id="RITM-20261124-AUTH",
                                                     requested_for="alice", variables={"duration": 30}))
    process = named("access-review")
    grace, bob, carol = (signed_client(env, keys[user][0]) for user in ("grace", "bob", "carol"))
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        status = await app.start(grace, process, app.build_start(process, {"title": "Q4"}, "grace"), task_queue)
        tracked.append(status.id)
        attest = process.action("attest")
        assert attest is not None
        # bob signs, claiming to be carol (alice's manager): refused before history
        forged = app.build_action(process, attest, {"grant": grant, "decision": "revoke"}, "carol")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await app.act(bob, status.id, attest, forged)
        assert "unverified" in refused.value.cause.message
        done = await app.act(carol, status.id, attest, forged)
        assert (done.state.value, done.revoked) == ("closed", [grant])
