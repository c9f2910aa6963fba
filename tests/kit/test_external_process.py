"""A process from a local module (ITSM_PROCESSES) is first-class, with no code of its own
outside its module (issue 15): it runs on a real worker through the generic CLI, appears in
`runs list --process`, names its actors (and the channel they acted through) and its process
in the audit export, is counted in the KPIs, and ITSM_AUTH verifies its actions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from worker.main import build_worker

MODULE = "tests.kit.review_process:REVIEW"


@pytest.fixture
def review_loaded(monkeypatch):
    monkeypatch.setenv("ITSM_PROCESSES", MODULE)


def itsm(live, task_queue: str, *args: str, processes: str = MODULE) -> subprocess.CompletedProcess:
    """The CLI against `live` on `task_queue`, with `processes` as ITSM_PROCESSES (empty: only
    the installed packages' processes)."""
    env = {**os.environ, "TEMPORAL_ADDRESS": live.client.service_client.config.target_host, "ITSM_TIMEOUT": "10",
           "ITSM_TASK_QUEUE": task_queue, "ITSM_PROCESSES": processes}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=60)


async def cli(live, task_queue: str, *args: str, processes: str = MODULE) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(lambda: itsm(live, task_queue, *args, processes=processes))


async def test_a_process_from_a_local_module_is_first_class(live, task_queue, db, channel, review_loaded, tracked):
    listed = await cli(live, task_queue, "process", "list", "--json")
    review = next(p for p in json.loads(listed.stdout)["processes"] if p["name"] == "review")
    assert (review["prefix"], [a["name"] for a in review["actions"]]) == ("REV", ["attest"])

    async with build_worker(live.client, task_queue, db=db, channel=channel):
        started = await cli(live, task_queue, "process", "start", "review", "--field", "title=Q4 access review",
                            "--field", "reviewer=dave", "--field", 'grants=["vpn:alice", "db:bob"]', "--as", "carol")
        assert started.returncode == 0, started.stderr
        review_id = started.stdout.strip()
        tracked.append(review_id)
        assert review_id.startswith("REV-")

        refused = await cli(live, task_queue, "process", "do", review_id, "attest", "--field", "grant=vpn:alice",
                            "--as", "erin")
        assert (refused.returncode, refused.stderr) == (2, f"itsm: erin is not the reviewer of {review_id} "
                                                           "(dave is)\n")
        bad = await cli(live, task_queue, "process", "do", review_id, "attest", "--field", "keep=perhaps",
                        "--field", "grant=vpn:alice", "--as", "dave")
        assert bad.returncode == 2 and bad.stderr.startswith("itsm: keep: "), bad.stderr
        unknown = await cli(live, task_queue, "process", "do", review_id, "approve", "--as", "dave")
        assert unknown.stderr == "itsm: review has no action 'approve' (actions: attest)\n"

        memo = await (await live.client.get_workflow_handle(review_id).describe()).memo()
        assert memo["status"]["actions"] == [{"action": "attest", "groups": [], "users": ["dave"]}]
        kept = await cli(live, task_queue, "process", "do", review_id, "attest", "--field", "grant=vpn:alice",
                         "--as", "dave")
        assert kept.stdout == f"{review_id} attesting\n", kept.stderr
        done = await cli(live, task_queue, "process", "do", review_id, "attest", "--field", "grant=db:bob",
                         "--field", "keep=false", "--as", "dave")
        assert done.stdout == f"{review_id} done\n", done.stderr
        await live.client.get_workflow_handle(review_id).result()

    shown = await cli(live, task_queue, "process", "show", review_id, "--json")  # no worker: the result
    assert json.loads(shown.stdout) | {"kept": ["vpn:alice"], "revoked": ["db:bob"], "state": "done"} \
        == json.loads(shown.stdout)
    for _ in range(50):  # visibility is eventually consistent
        runs = json.loads((await cli(live, task_queue, "runs", "list", "--process", "review", "--json")).stdout)
        if any(r["id"] == review_id and r["state"] == "done" for r in runs):
            break
        await asyncio.sleep(0.2)
    assert any(r["id"] == review_id and r["state"] == "done" and r["title"] == "Q4 access review" for r in runs), runs

    exported = await cli(live, task_queue, "audit", "export", review_id)
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {(r["actor"], r["channel"], r["process"], r["action"]) for r in rows} >= {
        ("carol", "cli", "review", "submitted"), ("dave", "cli", "review", "attest")}, rows

    report = json.loads((await cli(live, task_queue, "report", "kpis", "--json")).stdout)
    assert report["processes"]["review"]["outcomes"].get("done", 0) >= 1, report["processes"]


async def test_itsm_auth_verifies_a_declared_process_s_actions(env, task_queue, db, channel, review_loaded, keys,
                                                               tracked):
    from temporalio.client import WorkflowUpdateFailedError

    from itsmflow.app import generic as app
    from itsmflow.processes import named
    from tests.worker.auth_helpers import keyring, signed_client

    process = named("review")
    carol, bob = (signed_client(env, keys[user][0]) for user in ("carol", "bob"))
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        arg = app.build_start(process, {"title": "Q4", "reviewer": "bob", "grants": ["vpn:alice"]}, "carol")
        status = await app.start(carol, process, arg, task_queue)
        tracked.append(status.id)
        attest = process.action("attest")
        # carol signs, claiming to be bob: refused before history
        forged = app.build_action(process, attest, {"grant": "vpn:alice"}, "bob")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await app.act(carol, status.id, attest, forged)
        assert "unverified" in refused.value.cause.message
        done = await app.act(bob, status.id, attest, forged)
        assert done.state == "done" and done.kept == ["vpn:alice"]
