"""Release management (REL-…), on a time-skipping server at exact fake times: a release of
an existing change (in authorize) and two new ones, A → {B, C}. A change outside the release
on its CIs and window is refused (exit 2); a no-go at window start cancels all three and
frees the calendar; a go where B fails cancels C and backs A out by a task for its CI's
group; the release closes failed, and the KPIs count it."""

from __future__ import annotations

from datetime import timedelta

from definitions import registry
from itsmflow.app import change_ops, kpis, release_ops
from itsmflow.app.kpi_source import run_from_execution
from itsmflow.app.release_ops import NewChange
from tests.workflows.helpers import approve, complete, itsm_cli, refusal, rows, running_worker, submit
from workflows.change_models import ChangeState, Outcome
from workflows.release_models import GoInput, NoGoInput, ReleaseState

HOUR = timedelta(hours=1)


async def plan_and_create(env, task_queue, window_in: timedelta):
    """CHG-A (existing, in authorize) plus new B and C after it, in a 2h window."""
    now = await env.get_current_time()
    start, end = now + window_in, now + window_in + 2 * HOUR
    a = await submit(env, task_queue, cis=["web-01"], start_in=window_in + timedelta(minutes=30), duration=HOUR,
                     title="Upgrade the web tier")
    assert a.state == ChangeState.AUTHORIZE
    release = release_ops.plan(
        title="November platform release", start=start, end=end, requested_by="alice", manager="carol", now=now,
        existing=await release_ops.read_changes(env.client, [a.id]),
        new=[NewChange("b", "Deploy the API", ["web-02"]), NewChange("c", "Migrate the schema", ["db-prod-1"])],
        after={"b": [a.id], "c": [a.id]}, policy=registry.get("acme-demo"))
    status = await release_ops.create(env.client, release, task_queue)
    return release, status, a


async def reaches(env, release_id: str, state: ReleaseState):
    """The release once it is in `state` (a timer that fired is processed a moment later)."""
    import asyncio

    for _ in range(100):
        status = await release_ops.read(env.client, release_id)
        if status.state == state:
            return status
        await asyncio.sleep(0.05)
    return status


async def approve_release(env, release_id: str) -> None:
    from workflows.change_models import ApproveInput

    for actor in ("carol", "bob", "dave"):  # the release manager's level, then the CAB (db-prod-1 is high risk)
        await release_ops.update(env.client, release_id, "approve", ApproveInput(actor=actor))


async def test_a_release_no_go_then_a_failed_go(env, task_queue, db, channel):
    async with running_worker(env, task_queue, db, channel):
        # --- first run: a no-go at window start ---------------------------------------------
        release, status, a = await plan_and_create(env, task_queue, window_in=2 * HOUR)
        b_id, c_id = release.changes[1], release.changes[2]
        assert [m.id for m in status.members] == [a.id, b_id, c_id] and status.state == ReleaseState.AUTHORIZE
        assert [lvl.group for lvl in status.approvals] == ["change-managers", "cab"]
        joined = await change_ops.status(env.client, a.id)
        assert (joined.release, joined.state) == (release.id, ChangeState.AUTHORIZE)

        outside = await itsm_cli(env, "change", "submit", "--title", "Patch web-02", "--ci", "web-02",
                                 "--start", (release.window_start + timedelta(minutes=15)).isoformat(),
                                 "--end", (release.window_start + timedelta(minutes=45)).isoformat(), "--as", "alice",
                                 "--policy", "acme-demo",
                                 env_extra={"ITSM_TASK_QUEUE": task_queue})
        assert outside.returncode == 2, outside.stderr
        assert outside.stderr.startswith("itsm: CHG-") and f"rejected: conflicts with release {release.id} " \
            "on web-02" in outside.stderr

        await approve(env, a.id, "bob")  # A's own approval: it is scheduled, waiting for the release
        await approve_release(env, release.id)
        ready = await release_ops.read(env.client, release.id)
        assert ready.state == ReleaseState.SCHEDULED and {m.state for m in ready.members} == {"scheduled"}
        await env.sleep(release.window_start - await env.get_current_time())
        opened = await reaches(env, release.id, ReleaseState.GO_NO_GO)
        assert opened.state == ReleaseState.GO_NO_GO
        await release_ops.update(env.client, release.id, "no_go",
                                 NoGoInput(actor="carol", reason="the database backup is not verified"))
        no_go = await reaches(env, release.id, ReleaseState.CANCELED)  # once its changes are canceled
        assert (no_go.state, no_go.outcome.value) == (ReleaseState.CANCELED, "no-go")
        assert [m.outcome for m in no_go.members] == ["canceled"] * 3
        for change_id in (a.id, b_id, c_id):
            assert (await change_ops.status(env.client, change_id)).state == ChangeState.CANCELED
        assert rows(db, "SELECT change_id FROM change_calendar WHERE state = 'scheduled'") == []

        # --- second run: go; B fails, C is canceled, A is backed out --------------------------
        first = release
        release, status, a = await plan_and_create(env, task_queue, window_in=2 * HOUR)
        b_id, c_id = release.changes[1], release.changes[2]
        await approve(env, a.id, "bob")
        await approve_release(env, release.id)
        await env.sleep(release.window_start - await env.get_current_time())
        await reaches(env, release.id, ReleaseState.GO_NO_GO)
        refused = await refusal(release_ops.update(env.client, release.id, "go", GoInput(actor="alice")))
        assert refused == f"only the release manager (carol) decides go / no-go for {release.id}"
        going = await release_ops.update(env.client, release.id, "go", GoInput(actor="carol", comment="all green"))
        assert going.state == ReleaseState.IMPLEMENTING
        assert (await change_ops.status(env.client, a.id)).state == ChangeState.IMPLEMENT
        assert (await change_ops.status(env.client, b_id)).state == ChangeState.SCHEDULED  # after A
        await complete(env, a.id, "carol")
        assert (await change_ops.status(env.client, b_id)).state == ChangeState.IMPLEMENT
        await complete(env, b_id, "carol", outcome=Outcome.FAILED, notes="the API did not start")
        failed = await reaches(env, release.id, ReleaseState.CLOSED)
        assert (failed.state, failed.outcome.value) == (ReleaseState.CLOSED, "failed")
        assert [(m.id, m.outcome) for m in failed.members] == [(a.id, "successful"), (b_id, "failed"),
                                                               (c_id, "canceled")]
        back_out = failed.members[0].back_out
        assert back_out and back_out.startswith("TASK-")
        from itsmflow.app import request_ops

        task = await request_ops.status(env.client, back_out)
        assert (task.group, task.state.value) == ("service-desk", "open")  # web-01's owner group
        assert (await change_ops.status(env.client, c_id)).state == ChangeState.CANCELED
        assert rows(db, "SELECT change_id FROM change_calendar WHERE state = 'scheduled'") == []

        # The KPIs from the runs' search attributes (the time-skipping server lists nothing: describe
        # each run, as `itsm report kpis` reads each listed one).
        runs = [run_from_execution(await env.client.get_workflow_handle(run_id).describe())
                for run_id in (first.id, *first.changes, release.id, *release.changes)]
        now = await env.get_current_time()
        releases = kpis.compute(runs, now - timedelta(days=1), now + HOUR)["releases"]
        assert (releases["successful"], releases["went"], releases["changes_per_release"]) == (0, 1, 3.0)
        assert releases["outcomes"] == {"failed": 1, "no-go": 1}
        await env.client.get_workflow_handle(back_out).terminate("test over")
