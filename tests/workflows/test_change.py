"""The change process under time skipping, with the real activities, CMDB and templates:
every path from submit to closed, rejected or canceled, asserted at exact fake times."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities.cmdb import CmdbActivities, seed
from activities.db import utc_text
from activities.models import NotifyInput, Recipient, RecordChangeInput, RecordChangeResult
from activities.notify import NotifyActivities, message_id
from definitions import registry
from definitions.base import format_duration
from definitions.change import ChangeType, ConflictAction, WindowViolation
from definitions.windows import Blackout, MaintenanceWindow
from itsmflow.app.change_submit import SubmitError, build_change
from tests.workflows.helpers import (  # noqa: F401  (changes: the fixture)
    Changes,
    accepted_updates,
    activity_outcomes,
    activity_types,
    approve,
    calendar,
    cancel,
    changes,
    complete,
    emails,
    finished,
    fired_just_after,
    fired_timers,
    implementing,
    just_after,
    records,
    refusal,
    reject,
    rows,
    running_worker,
    sleep_until,
    status_of,
    steps,
    worker_with,
)
from workflows.change_models import ApproveInput, ChangeState, ChangeStatus, Outcome

DEMO = registry.get("acme-demo")
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


async def test_standard_change_is_preapproved_and_refuses_approval(env, changes, channel, db):
    status = await changes.submit(change_type=ChangeType.STANDARD, template="restart-web-server")
    assert (status.state, status.risk, status.approvals) == (ChangeState.SCHEDULED, None, [])
    assert channel.keys() == ["submitted", "scheduled"]
    assert await activity_types(env, status.id) == ["notify", "reserve_calendar", "notify"]
    assert calendar(db, status.id) == [
        ("web-01", utc_text(status.planned_start), utc_text(status.planned_end), "scheduled")
    ]

    assert await refusal(approve(env, status.id, "bob")) == f"{status.id} is scheduled, not awaiting approval"
    assert await accepted_updates(env, status.id) == [("settle", None)]

    await sleep_until(env, status.planned_start + SECOND)
    status = await complete(env, status.id, "erin")
    assert (status.state, status.close_code, status.implemented_by) == (ChangeState.CLOSED, "successful", "erin")
    assert channel.keys() == ["submitted", "scheduled", "implement", "closed"]


async def test_low_risk_change_needs_one_change_manager(env, changes, channel, db):
    before = await env.get_current_time()
    status = await changes.submit(title="Patch web-01")
    after = await env.get_current_time()
    assert (status.state, status.risk, status.risk_rule) == (ChangeState.AUTHORIZE, "low", "default")
    [level] = status.approvals
    assert (level.name, level.group, level.rule, level.required, level.status) == (
        "change-manager", "change-managers", "any", 1, "waiting")
    assert before <= level.started_at <= after
    assert channel.keys() == ["submitted", "approval.1.requested"]
    assert channel.sent[1].to == emails("bob", "carol")

    message = await refusal(approve(env, status.id, "alice"))
    assert message == "alice requested this and cannot approve it (segregation of duties)"

    await env.sleep(10 * MINUTE)
    before = await env.get_current_time()
    status = await approve(env, status.id, "bob", "looks safe")
    after = await env.get_current_time()
    [level] = status.approvals
    [decision] = level.decisions
    assert (decision.user, decision.decision, decision.comment) == ("bob", "approved", "looks safe")
    assert before <= decision.time <= after
    assert (level.status, level.decided_at) == ("approved", decision.time)
    assert status.state == ChangeState.SCHEDULED
    assert channel.keys() == ["submitted", "approval.1.requested", "approved", "scheduled"]

    await sleep_until(env, status.planned_start + SECOND)
    before = await env.get_current_time()
    status = await complete(env, status.id, "carol", notes="patched")
    after = await env.get_current_time()
    assert (status.state, status.close_code, status.implemented_by, status.implementation_notes) == (
        ChangeState.CLOSED, "successful", "carol", "patched")
    assert channel.keys() == ["submitted", "approval.1.requested", "approved", "scheduled", "implement", "closed"]
    assert records(db, status.id) == [("web-01", "successful", f"{status.id}:review")]
    [(closed_at,)] = rows(db, "SELECT closed_at FROM change_record WHERE change_id = ?", (status.id,))
    assert utc_text(before) <= closed_at <= utc_text(after)
    assert [row[3] for row in calendar(db, status.id)] == ["closed"]
    assert await finished(env, status.id) == status


@pytest.mark.parametrize(("ci", "risk", "rule"), [("db-prod-1", "high", "critical-ci"),
                                                  ("lb-01", "moderate", "medium-ci")])
async def test_change_manager_then_cab_quorum_of_two(env, changes, channel, ci, risk, rule):
    status = await changes.submit(cis=[ci])
    assert (status.state, status.risk, status.risk_rule) == (ChangeState.AUTHORIZE, risk, rule)
    assert [(lvl.name, lvl.group, lvl.rule, lvl.quorum, lvl.status) for lvl in status.approvals] == [
        ("change-manager", "change-managers", "any", None, "waiting"), ("cab", "cab", "quorum", 2, "pending")]

    status = await approve(env, status.id, "bob")
    manager, cab = status.approvals
    assert (status.state, manager.status, cab.status, cab.required) == (ChangeState.AUTHORIZE, "approved", "waiting", 2)
    assert cab.started_at == manager.decided_at == manager.decisions[0].time
    assert channel.keys() == ["submitted", "approval.1.requested", "approval.2.requested"]
    assert channel.sent[-1].to == emails("bob", "carol", "dave")
    assert await refusal(approve(env, status.id, "bob")) == "bob has already decided on this"
    assert await refusal(approve(env, status.id, "grace")) == "grace is not in group 'cab' (level 2 'cab')"

    status = await approve(env, status.id, "carol")
    assert (status.state, status.approvals[1].status, status.approvals[1].approvals()) == (
        ChangeState.AUTHORIZE, "waiting", 1)
    assert await refusal(approve(env, status.id, "carol")) == "carol has already decided on this"

    status = await approve(env, status.id, "dave")
    cab = status.approvals[1]
    assert (status.state, cab.status, [d.user for d in cab.decisions]) == (
        ChangeState.SCHEDULED, "approved", ["carol", "dave"])
    assert cab.decided_at == cab.decisions[-1].time
    assert channel.keys()[-2:] == ["approved", "scheduled"]
    assert await accepted_updates(env, status.id) == [
        ("settle", None), ("approve", "bob"), ("approve", "carol"), ("approve", "dave")]


async def test_refused_decisions_never_enter_history(env, changes, channel):
    status = await changes.submit(requested_by="bob")
    not_in_group = "{} is not in group 'change-managers' (level 1 'change-manager')"
    own = "bob requested this and cannot approve it (segregation of duties)"
    assert await refusal(approve(env, status.id, "mallory")) == "unknown user 'mallory'"
    assert await refusal(approve(env, status.id, "erin")) == not_in_group.format("erin")
    assert await refusal(reject(env, status.id, "dave", "no")) == not_in_group.format("dave")
    assert await refusal(approve(env, status.id, "bob")) == own
    assert await refusal(reject(env, status.id, "bob", "withdrawn")) == own

    status = await approve(env, status.id, "carol")
    assert status.state == ChangeState.SCHEDULED
    assert await refusal(reject(env, status.id, "carol", "changed my mind")) == (
        f"{status.id} is scheduled, not awaiting approval")
    assert [d.user for d in status.approvals[0].decisions] == ["carol"]
    assert await accepted_updates(env, status.id) == [("settle", None), ("approve", "carol")]


@pytest.mark.parametrize(("approvers", "rejecter", "level"), [([], "carol", 1), (["bob"], "dave", 2),
                                                              (["bob", "carol"], "dave", 2)])
async def test_any_reject_rejects_the_change(env, changes, channel, db, approvers, rejecter, level):
    status = await changes.submit(cis=["lb-01"])
    for approver in approvers:
        await approve(env, status.id, approver)
    status = await reject(env, status.id, rejecter, "no backout plan")
    assert (status.state, status.reason) == (ChangeState.REJECTED, f"rejected by {rejecter}: no backout plan")
    decided = status.approvals[level - 1]
    last = decided.decisions[-1]
    assert (decided.status, last.user, last.decision, last.comment) == (
        "rejected", rejecter, "rejected", "no backout plan")
    assert decided.decided_at == last.time
    expected = ["rejected", "pending"] if level == 1 else ["approved", "rejected"]
    assert [lvl.status for lvl in status.approvals] == expected
    assert channel.keys()[-1] == "rejected" and "approved" not in channel.keys()
    assert calendar(db, status.id) == []
    assert await finished(env, status.id) == status


async def test_cab_level_times_out_and_rejects(env, changes, channel):
    status = await changes.submit(cis=["lb-01"])
    cab = (await approve(env, status.id, "bob")).approvals[1]
    await sleep_until(env, cab.started_at + HOUR - SECOND)
    assert (await status_of(env, status.id)).approvals[1].status == "waiting"

    await sleep_until(env, cab.started_at + HOUR + SECOND)
    status = await status_of(env, status.id)
    cab = status.approvals[1]
    assert (status.state, status.reason) == (ChangeState.REJECTED, "level 2 'cab' timed out after 1h")
    assert (cab.status, cab.escalations) == ("timed_out", 0)
    [(duration, fired)] = await fired_timers(env, status.id)
    assert duration == HOUR and just_after(cab.decided_at, fired)
    assert channel.keys() == ["submitted", "approval.1.requested", "approval.2.requested", "rejected"]


@pytest.mark.parametrize(("change_type", "name", "timeout", "escalations"), [
    (ChangeType.NORMAL, "change-manager", timedelta(minutes=30), 2),
    (ChangeType.EMERGENCY, "ecab", timedelta(minutes=2, seconds=30), 3),
])
async def test_unanswered_level_escalates_then_rejects(env, changes, channel, change_type, name, timeout, escalations):
    status = await changes.submit(change_type=change_type)
    started = status.approvals[0].started_at
    for n in range(1, escalations + 1):
        await sleep_until(env, started + n * timeout - SECOND)
        assert f"approval.1.escalated.{n}" not in channel.keys()
        await sleep_until(env, started + n * timeout + SECOND)
        assert channel.keys()[-1] == f"approval.1.escalated.{n}"
        assert channel.sent[-1].to == emails("bob", "carol", "dave")
        assert (await status_of(env, status.id)).approvals[0].escalations == n

    await sleep_until(env, started + (escalations + 1) * timeout - SECOND)
    assert (await status_of(env, status.id)).state == ChangeState.AUTHORIZE
    await sleep_until(env, started + (escalations + 1) * timeout + SECOND)
    status = await status_of(env, status.id)
    [level] = status.approvals
    assert (status.state, level.status, level.escalations) == (ChangeState.REJECTED, "timed_out", escalations)
    assert status.reason == (f"level 1 {name!r} timed out after {format_duration(timeout)} and {escalations} "
                             "escalation(s)")
    fired = await fired_timers(env, status.id)
    assert [duration for duration, _ in fired] == [timeout] * (escalations + 1)
    assert just_after(level.decided_at, fired[-1][1])
    assert channel.keys() == ["submitted", "approval.1.requested",
                              *[f"approval.1.escalated.{n}" for n in range(1, escalations + 1)], "rejected"]


async def test_emergency_skips_conflicts_and_needs_one_ecab_approval(env, changes, channel, db):
    await changes.submit(change_type=ChangeType.STANDARD, template="restart-web-server", start_in=5 * MINUTE)
    now = await env.get_current_time()
    status = await changes.submit_between(now - 10 * MINUTE, now + 50 * MINUTE, change_type=ChangeType.EMERGENCY)
    assert (status.state, status.risk, status.conflicts) == (ChangeState.AUTHORIZE, "low", [])
    assert [(lvl.name, lvl.group, lvl.rule) for lvl in status.approvals] == [("ecab", "change-managers", "any")]
    assert "find_conflicts" not in await activity_types(env, status.id)

    status = await approve(env, status.id, "carol")
    assert status.state == ChangeState.IMPLEMENT
    assert (status.planned_start, status.original_start, status.notices) == (now - 10 * MINUTE, None, [])
    assert steps(channel, status.id) == ["submitted", "approval.1.requested", "approved", "scheduled", "implement"]
    status = await complete(env, status.id, "carol")
    assert status.state == ChangeState.CLOSED


async def test_window_and_blackout_refuse_or_move_at_submit(env, changes, channel):
    now = await env.get_current_time()
    opens = (now + 2 * HOUR).replace(second=0, microsecond=0)
    strict = DEMO.model_copy(update={
        "windows": [MaintenanceWindow(name="evening", start=opens.time(), end=(opens + 3 * HOUR).time())],
        "blackouts": [Blackout(name="freeze", start=opens, end=opens + HOUR)],
        "outside_window": WindowViolation.REJECT,
    })
    early, frozen = (now + 30 * MINUTE, now + 90 * MINUTE), (opens + 30 * MINUTE, opens + 90 * MINUTE)
    hint = f"next possible start: {(opens + HOUR).isoformat()}"
    with pytest.raises(SubmitError) as outside:
        await changes.submit_between(*early, policy=strict)
    assert str(outside.value) == (f"planned time {early[0].isoformat()} to {early[1].isoformat()} is outside every "
                                  f"maintenance window (evening); {hint}")
    with pytest.raises(SubmitError) as blackout:
        await changes.submit_between(*frozen, policy=strict)
    assert str(blackout.value) == (f"planned time {frozen[0].isoformat()} to {frozen[1].isoformat()} overlaps blackout "
                                   f"'freeze' ({opens.isoformat()} to {(opens + HOUR).isoformat()}); {hint}")
    assert changes.ids == []

    moving = strict.model_copy(update={"outside_window": WindowViolation.MOVE})
    status = await changes.submit_between(*early, policy=moving)
    assert (status.planned_start, status.planned_end) == (opens + HOUR, opens + 2 * HOUR)
    assert status.notices == [f"planned time is outside every maintenance window (evening); moved to "
                              f"{(opens + HOUR).isoformat()} per policy acme-demo"]
    assert (await approve(env, status.id, "bob")).state == ChangeState.SCHEDULED
    await sleep_until(env, opens + HOUR - SECOND)
    assert (await status_of(env, status.id)).state == ChangeState.SCHEDULED
    await sleep_until(env, opens + HOUR + SECOND)
    assert (await status_of(env, status.id)).state == ChangeState.IMPLEMENT
    assert await fired_just_after(env, status.id, [opens + HOUR])


async def test_scheduled_change_waits_for_its_planned_start_exactly(env, changes, channel):
    status = await changes.submit(start_in=5 * HOUR)
    status = await approve(env, status.id, "carol")
    await sleep_until(env, status.planned_start - SECOND)
    assert (await status_of(env, status.id)).state == ChangeState.SCHEDULED
    assert "implement" not in channel.keys()

    await sleep_until(env, status.planned_start + SECOND)
    assert (await status_of(env, status.id)).state == ChangeState.IMPLEMENT
    assert await fired_just_after(env, status.id, [status.planned_start])
    assert channel.keys()[-1] == "implement"
    assert channel.sent[-1].to == emails("bob", "carol", "erin", "frank")


async def test_approval_after_planned_start_moves_to_next_slot(env, changes, channel, db):
    now = await env.get_current_time()
    opens = (now + 10 * MINUTE).replace(second=0, microsecond=0)
    daily = DEMO.model_copy(update={"windows": [
        MaintenanceWindow(name="daily", start=opens.time(), end=(opens + 2 * HOUR).time())]})
    status = await changes.submit_between(opens, opens + 90 * MINUTE, policy=daily)
    assert status.notices == []

    await sleep_until(env, opens + 45 * MINUTE)
    status = await approve(env, status.id, "bob")
    tomorrow = opens + timedelta(days=1)
    assert status.state == ChangeState.SCHEDULED
    assert (status.original_start, status.planned_start, status.planned_end) == (
        opens, tomorrow, tomorrow + 90 * MINUTE)
    assert status.notices == [f"planned start passed during approval; moved to {tomorrow:%Y-%m-%d %H:%M:%S}Z"]
    assert calendar(db, status.id) == [("web-01", utc_text(tomorrow), utc_text(tomorrow + 90 * MINUTE), "scheduled")]
    assert channel.keys() == ["submitted", "approval.1.requested", "approval.1.escalated.1", "approved", "scheduled"]


async def test_overrun_is_notified_once_and_implementation_continues(env, changes, channel):
    status = await implementing(env, changes, start_in=30 * MINUTE, duration=HOUR)
    await sleep_until(env, status.planned_end - SECOND)
    status = await status_of(env, status.id)
    assert (status.state, status.notices, "overrun" in channel.keys()) == (ChangeState.IMPLEMENT, [], False)

    await sleep_until(env, status.planned_end + SECOND)
    status = await status_of(env, status.id)
    assert status.state == ChangeState.IMPLEMENT
    assert status.notices == [f"implementation overran its planned end {status.planned_end:%Y-%m-%d %H:%M:%S}Z"]
    assert channel.keys()[-1] == "overrun" and channel.sent[-1].to == emails("bob", "carol")
    assert await fired_just_after(env, status.id, [status.planned_start, status.planned_end])

    await env.sleep(3 * HOUR)
    assert (await status_of(env, status.id)).state == ChangeState.IMPLEMENT
    status = await complete(env, status.id, "bob")
    assert status.state == ChangeState.CLOSED
    assert channel.keys()[-3:] == ["implement", "overrun", "closed"] and channel.keys().count("overrun") == 1


@pytest.mark.parametrize(("approved", "actor", "notified"), [
    (False, "alice", emails("alice", "bob", "carol")), (True, "alice", emails("alice")),
    (True, "carol", emails("alice")),
], ids=["authorize-requester", "scheduled-requester", "scheduled-change-manager"])
async def test_cancel_before_implementation(env, changes, channel, db, approved, actor, notified):
    status = await changes.submit()
    if approved:
        assert (await approve(env, status.id, "bob")).state == ChangeState.SCHEDULED
    status = await cancel(env, status.id, actor, "vendor postponed")
    assert (status.state, status.reason) == (ChangeState.CANCELED, "vendor postponed")
    assert channel.keys()[-1] == "canceled" and channel.sent[-1].to == notified
    assert [(row[0], row[3]) for row in calendar(db, status.id)] == ([("web-01", "canceled")] if approved else [])
    assert (await accepted_updates(env, status.id))[-1] == ("cancel", actor)
    assert await finished(env, status.id) == status


async def test_cancel_refused_for_outsiders_and_during_implementation(env, changes, channel):
    status = await changes.submit(start_in=10 * MINUTE)
    outsider = await refusal(cancel(env, status.id, "erin"))
    assert outsider == f"only the requester or change-managers may cancel {status.id}"
    assert await refusal(cancel(env, status.id, "mallory")) == "unknown user 'mallory'"
    await approve(env, status.id, "bob")
    await sleep_until(env, status.planned_start + SECOND)
    assert await refusal(cancel(env, status.id, "alice")) == f"{status.id} is implement and can no longer be canceled"
    assert (await status_of(env, status.id)).state == ChangeState.IMPLEMENT
    assert [name for name, _ in await accepted_updates(env, status.id)] == ["settle", "approve"]


@pytest.mark.parametrize("action", [ConflictAction.WARN, ConflictAction.BLOCK])
async def test_overlapping_change_on_the_same_ci(env, changes, channel, db, action):
    first = await changes.submit(change_type=ChangeType.STANDARD, template="restart-web-server")
    policy = DEMO.model_copy(update={"conflicts": action})
    second = await changes.submit_between(first.planned_start + 30 * MINUTE, first.planned_end + 30 * MINUTE,
                                          policy=policy)
    conflict = f"{first.id} on web-01"
    assert second.conflicts == [conflict]
    if action == ConflictAction.WARN:
        assert (second.state, second.notices) == (ChangeState.AUTHORIZE, [f"conflicts (warning only): {conflict}"])
    else:
        assert (second.state, second.reason) == (ChangeState.REJECTED, f"conflicts with {conflict}")
        assert steps(channel, second.id) == ["submitted", "rejected"]
        assert calendar(db, second.id) == []
        assert await finished(env, second.id) == second

    adjacent = await changes.submit_between(first.planned_end, first.planned_end + HOUR, cis=["web-01", "web-02"],
                                            policy=policy)
    assert (adjacent.state, adjacent.conflicts) == (ChangeState.AUTHORIZE, [])


@pytest.mark.parametrize(("implementer", "outcome"), [("frank", Outcome.SUCCESSFUL), ("erin", Outcome.FAILED),
                                                      ("carol", Outcome.BACKED_OUT)])
async def test_only_implementers_complete(env, changes, channel, db, implementer, outcome):
    status = await changes.submit(start_in=10 * MINUTE)
    await approve(env, status.id, "bob")
    assert await refusal(complete(env, status.id, "frank")) == f"{status.id} is scheduled, not being implemented"
    await sleep_until(env, status.planned_start + SECOND)
    needs = "needs one of: change-managers, service-desk"
    assert await refusal(complete(env, status.id, "alice")) == f"alice may not implement this change ({needs})"
    assert await refusal(complete(env, status.id, "grace")) == f"grace may not implement this change ({needs})"
    assert await refusal(complete(env, status.id, "mallory")) == "unknown user 'mallory'"

    status = await complete(env, status.id, implementer, outcome)
    assert (status.state, status.close_code, status.implemented_by) == (ChangeState.CLOSED, outcome, implementer)
    assert [u for u in await accepted_updates(env, status.id) if u[0] == "complete"] == [("complete", implementer)]
    expected = [("web-01", "successful", f"{status.id}:review")] if outcome == Outcome.SUCCESSFUL else []
    assert records(db, status.id) == expected
    assert [row[3] for row in calendar(db, status.id)] == ["closed"]


class RecordThenLoseReply(CmdbActivities):
    """The CMDB commits the change record, then the first attempt's reply is lost."""

    @activity.defn(name="record_change")
    def record_change(self, record: RecordChangeInput) -> RecordChangeResult:
        result = super().record_change(record)
        if activity.info().attempt == 1:
            raise ConnectionError("connection reset after commit")
        return result


async def test_record_change_retried_after_commit_writes_each_ci_once(env, task_queue, db, channel):
    seed(db, registry.get("acme"))
    cmdb, notify = RecordThenLoseReply(db), NotifyActivities(db, channel)
    activities = [cmdb.find_conflicts, cmdb.reserve_calendar, cmdb.release_calendar, cmdb.record_change, notify.notify]
    changes = Changes(env, task_queue)
    try:
        async with worker_with(env, task_queue, activities):
            status = await implementing(env, changes, cis=["web-01", "web-02"])
            status = await asyncio.wait_for(complete(env, status.id, "erin"), timeout=20)
    finally:
        await changes.terminate_open()
    assert status.state == ChangeState.CLOSED
    key = f"{status.id}:review"
    assert records(db, status.id) == [("web-01", "successful", key), ("web-02", "successful", key)]
    assert await activity_outcomes(env, status.id, "record_change") == [(2, {"written": 0, "already_present": 2})]


def test_notify_sends_once_per_idempotency_key(db, channel):
    now = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    change = build_change(change_id="CHG-20261124-ABCD", title="Patch web-01", cis=["web-01"], now=now, policy=DEMO,
                          change_type=ChangeType.NORMAL, start=now + HOUR, end=now + 2 * HOUR, requested_by="alice")
    message = NotifyInput(key=f"{change.id}:submitted", template="change/change_submitted",
                          recipients=[Recipient(username="alice", email="alice@acme.example")],
                          context={"change": ChangeStatus.initial(change).model_dump(mode="json")})
    notify = NotifyActivities(db, channel)
    first, second = (ActivityEnvironment().run(notify.notify, message) for _ in range(2))
    assert (first.duplicate, first.recipients, second.duplicate) == (False, 1, True)
    assert first.message_id == second.message_id == message_id(message.key)
    [sent] = channel.sent
    assert (sent.key, sent.subject) == (message.key, "[CHG-20261124-ABCD] Submitted: Patch web-01")
    assert rows(db, "SELECT idempotency_key, message_id, channel, recipients, subject FROM notification_ledger") == [
        (message.key, first.message_id, "recording", '["alice@acme.example"]', sent.subject)]


async def test_block_policy_never_schedules_two_overlapping_changes(env, changes, db):
    block = DEMO.model_copy(update={"conflicts": ConflictAction.BLOCK})
    first = await changes.submit(policy=block)
    second = await changes.submit(policy=block, start_in=90 * MINUTE)
    states = [(await approve(env, change.id, "bob")).state for change in (first, second)]
    assert states.count(ChangeState.SCHEDULED) == 1, states



async def test_a_state_refusal_is_sent_once_more_before_the_user_sees_it(env, task_queue, db, channel, changes,
                                                                        monkeypatch):
    """A validator can run a step behind what `show` already said (the event that moved the run
    on arrived in the same workflow task): a state refusal is retried once, signed afresh."""
    from temporalio.client import WorkflowHandle

    from itsmflow.app import change_ops

    sent: list[str] = []
    original = WorkflowHandle.execute_update

    async def counting(self, update, *args, **kwargs):
        sent.append(update)
        return await original(self, update, *args, **kwargs)

    monkeypatch.setattr(WorkflowHandle, "execute_update", counting)
    status = await changes.submit(start_in=timedelta(hours=1))
    approved = await change_ops.update(env.client, status.id, "approve", ApproveInput(actor="bob"))
    assert sent == ["approve"]  # accepted at once: no second call
    refused = await refusal(change_ops.update(env.client, approved.id, "approve", ApproveInput(actor="carol")))
    assert refused == f"{approved.id} is scheduled, not awaiting approval"
    assert sent == ["approve", "approve", "approve"]  # the state refusal was tried once more
