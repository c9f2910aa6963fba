"""The access review on itsmflow's testing kit, at exact fake times: a manager keeps and revokes
(the revocation reaches the CMDB), a non-manager is refused, an attestation still missing at the
deadline is escalated to the manager's manager at exactly the deadline, and the closing report."""

from __future__ import annotations

from datetime import timedelta

from itsmflow.testing import AT_TOLERANCE


def on_time(actual, due) -> bool:
    """The fake clock runs on in real time between skips: an action lands just after `due`."""
    return timedelta(0) <= actual - due < AT_TOLERANCE


async def test_a_manager_revokes_and_keeps_and_the_review_closes_with_its_report(itsm):
    alice_vpn = itsm.grant("alice", "grant_vpn", {"duration": 30})  # alice's manager: carol
    erin_db = itsm.grant("erin", "grant_db", {"database": "db-prod-1", "role": "write"})  # erin's: bob
    review = await itsm.start("access-review", {"title": "Q4 access review"}, as_user="grace")
    t0 = review.opened_at
    assert (review.id.startswith("ARV-"), review.state.value) == (True, "attesting")
    assert {g.key: (g.grantee, g.attester) for g in review.grants} == {alice_vpn: ("alice", "carol"),
                                                                        erin_db: ("erin", "bob")}
    asked = itsm.outbox.expect("attest.carol", to="carol", run_id=review.id, at=t0)
    assert alice_vpn in asked.text and erin_db not in asked.text
    itsm.outbox.expect("attest.bob", to="bob", at=t0)
    assert len(itsm.outbox.notifications()) == 2  # one per manager

    assert await itsm.refusal(review.id, "attest", {"grant": alice_vpn, "decision": "keep"}, as_user="erin") == \
        f"erin may not attest {alice_vpn} (alice: vpn (30 days)): carol, alice's manager, attests it"
    assert await itsm.refusal(review.id, "attest", {"grant": erin_db, "decision": "keep"}, as_user="erin") == \
        f"erin may not attest their own grant {erin_db}"

    await itsm.sleep(timedelta(days=2))
    revoked = await itsm.act(review.id, "attest", {"grant": alice_vpn, "decision": "revoke", "reason": "left the team"},
                             as_user="carol")
    assert (revoked.state.value, revoked.revoked, revoked.kept) == ("attesting", [alice_vpn], [])
    assert on_time(next(g for g in revoked.grants if g.key == alice_vpn).revoked_at, t0 + timedelta(days=2))
    assert itsm.rows("SELECT revoked_by, reason, revoked FROM grant_revocation WHERE grant_key = ?", (alice_vpn,)) \
        == [("carol", "left the team", 1)]
    assert [key for key, undone in itsm.rows("SELECT idempotency_key, undone_at FROM fulfillment_record")
            if undone] == [alice_vpn]
    assert await itsm.refusal(review.id, "attest", {"grant": alice_vpn, "decision": "keep"}, as_user="carol") == \
        f"{alice_vpn} was attested already (revoke by carol)"

    closed = await itsm.act(review.id, "attest", {"grant": erin_db, "decision": "keep"}, as_user="bob")
    assert (closed.state.value, closed.kept, closed.revoked, closed.unattested) == \
        ("closed", [erin_db], [alice_vpn], [])
    assert on_time(closed.closed_at, t0 + timedelta(days=2))
    report = itsm.outbox.expect("closed", to="grace", at=closed.closed_at)
    assert report.subject == f"[{review.id}] Access review closed: 1 kept, 1 revoked, 0 unattested"
    assert f"Revoked (1):\n  {alice_vpn}  alice: vpn (30 days), by carol\n" in report.text


async def test_an_overdue_attestation_escalates_at_exactly_the_deadline(itsm):
    alice_vpn = itsm.grant("alice", "grant_vpn")  # carol attests
    frank_vpn = itsm.grant("frank", "grant_vpn")  # dave attests; dave's manager is bob
    review = await itsm.start("access-review", {"title": "Q1 VPN review", "names": ["vpn"], "attest_within": "7d",
                                                "grace": "3d"}, as_user="grace")
    t0 = review.opened_at
    assert (review.due_at, review.closes_at) == (t0 + timedelta(days=7), t0 + timedelta(days=10))
    await itsm.act(review.id, "attest", {"grant": alice_vpn, "decision": "keep"}, as_user="carol")

    await itsm.sleep_until(t0 + timedelta(days=7) - timedelta(minutes=1))
    assert (await itsm.show(review.id)).state.value == "attesting"
    assert not [s for s in itsm.outbox.notifications() if s.step.startswith("overdue")]

    await itsm.sleep_until(t0 + timedelta(days=7))
    overdue = itsm.outbox.expect("overdue.dave", to="bob", at=t0 + timedelta(days=7))
    assert "dave" in overdue.to and frank_vpn in overdue.text and alice_vpn not in overdue.text
    escalated = await itsm.show(review.id)
    assert escalated.state.value == "escalated" and on_time(escalated.escalated_at, t0 + timedelta(days=7))
    memo = await (await itsm.client.get_workflow_handle(review.id).describe()).memo()
    assert memo["status"]["actions"] == [{"action": "attest", "groups": [], "users": ["dave"]}]

    await itsm.sleep_until(t0 + timedelta(days=10))
    ended = await itsm.show(review.id)
    assert (ended.state.value, ended.kept, ended.revoked, ended.unattested) == \
        ("incomplete", [alice_vpn], [], [frank_vpn])
    assert on_time(ended.closed_at, t0 + timedelta(days=10))
    report = itsm.outbox.expect("closed", to="grace", at=t0 + timedelta(days=10))
    assert f"Unattested (1):\n  {frank_vpn}  frank: vpn (30 days)" in report.text
    assert [key for key, undone in itsm.rows("SELECT idempotency_key, undone_at FROM fulfillment_record")
            if undone] == []  # unattested is reported, not revoked


async def test_the_owner_group_attests_for_people_with_no_manager(itsm):
    grace_db = itsm.grant("grace", "grant_db")  # grace heads acme: nobody manages her
    review = await itsm.start("access-review", {"title": "Q4", "owner_group": "problem-managers"}, as_user="bob")
    assert [g.attester for g in review.grants] == ["problem-managers"]
    memo = await (await itsm.client.get_workflow_handle(review.id).describe()).memo()
    assert memo["status"]["actions"] == [{"action": "attest", "groups": ["problem-managers"], "users": []}]
    itsm.outbox.expect("attest.problem-managers", to="carol")
    assert await itsm.refusal(review.id, "attest", {"grant": grace_db, "decision": "keep"}, as_user="bob") == \
        f"bob may not attest {grace_db} (grace: db-prod-1 (read)): grace has no manager, a member of " \
        "problem-managers attests it"
    done = await itsm.act(review.id, "attest", {"grant": grace_db, "decision": "revoke"}, as_user="carol")
    assert (done.state.value, done.revoked) == ("closed", [grace_db])


async def test_a_review_with_nothing_to_attest_closes_at_once(itsm):
    review = await itsm.start("access-review", {"title": "Q4"}, as_user="grace")
    assert (review.state.value, review.grants, review.kept) == ("closed", [], [])
    assert itsm.outbox.keys() == ["closed"]
