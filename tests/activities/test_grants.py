"""The kit's grant activities (activities/grants.py) on both databases: the grants in force are
what request items' automated tasks recorded and nothing ended them; a revocation is keyed, so a
retry answers what the first attempt did, and of revocations racing for one grant exactly one
ends it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from activities.fulfillment import FulfillmentActivities
from activities.grants import GrantActivities
from activities.models import ActionInput, GrantQuery, RevokeInput
from tests.activities.test_cmdb_backends import T0, database, race  # noqa: F401 (the fixture, both engines)


def fulfil(db, item_id: str, action: str, grantee: str, **variables) -> str:
    key = f"{item_id}:grant"
    FulfillmentActivities(db).run_action(ActionInput(key=key, action=action, item_id=item_id, requested_for=grantee,
                                                     variables=variables))
    return key


def test_the_grants_in_force_are_those_nothing_ended(database):
    fulfillment, grants = FulfillmentActivities(database), GrantActivities(database)
    alice = fulfil(database, "RITM-1", "grant_vpn", "alice", duration=30)
    bob = fulfil(database, "RITM-2", "grant_db", "bob", database="db-prod-1", role="write")
    fulfil(database, "RITM-3", "record_asset", "carol", model="pro-16")  # a laptop is no grant
    expired = fulfil(database, "RITM-4", "grant_vpn", "dave", duration=1)
    assert fulfillment.undo_action(expired)

    found = grants.list_grants(GrantQuery())
    assert [(g.key, g.grantee, g.name, g.detail, g.action, g.item_id) for g in found] == [
        (alice, "alice", "vpn", "30 days", "grant_vpn", "RITM-1"),
        (bob, "bob", "db-prod-1", "write", "grant_db", "RITM-2")]
    assert all(abs(g.granted_at - datetime.now(timezone.utc)) < timedelta(minutes=1) for g in found)
    assert [g.key for g in grants.list_grants(GrantQuery(names=["vpn"]))] == [alice]
    assert [g.key for g in grants.list_grants(GrantQuery(grantees=["bob"], actions=["grant_db"]))] == [bob]
    assert len(grants.list_grants(GrantQuery(limit=1))) == 1
    assert grants.list_grants(GrantQuery(as_of=T0)) == []  # recorded after then
    assert len(grants.list_grants(GrantQuery(as_of=datetime.now(timezone.utc)))) == 2  # to the second


def test_a_revocation_is_keyed_and_a_grant_ends_once(database):
    fulfillment, grants = FulfillmentActivities(database), GrantActivities(database)
    key = fulfil(database, "RITM-1", "grant_vpn", "alice", duration=30)
    first = RevokeInput(key="ARV-1:revoke:RITM-1:grant", grant_key=key, revoked_by="carol", reason="left the team")
    assert grants.revoke_grant(first) is True
    with database.transaction() as cur:
        undone = cur.value("SELECT undone_at FROM fulfillment_record WHERE idempotency_key = ?", (key,))
    assert grants.revoke_grant(first) is True  # a retry: the same answer, nothing written again
    assert grants.revoke_grant(first.model_copy(update={"key": "ARV-2:revoke:RITM-1:grant"})) is False
    assert fulfillment.undo_action(key) is False  # the VPN item's expiry finds it ended
    assert grants.list_grants(GrantQuery()) == []
    assert grants.revoke_grant(RevokeInput(key="ARV-1:revoke:nope", grant_key="nope", revoked_by="carol")) is False
    with database.transaction() as cur:
        assert cur.value("SELECT undone_at FROM fulfillment_record WHERE idempotency_key = ?", (key,)) == undone
        assert cur.all("SELECT idempotency_key, revoked_by, reason, revoked FROM grant_revocation "
                       "WHERE grant_key = ? ORDER BY idempotency_key", (key,)) == [
            ("ARV-1:revoke:RITM-1:grant", "carol", "left the team", 1),
            ("ARV-2:revoke:RITM-1:grant", "carol", "left the team", 0)]


def test_racing_revocations_end_a_grant_once(database):
    grants = GrantActivities(database)
    key = fulfil(database, "RITM-1", "grant_vpn", "alice", duration=30)
    retried = RevokeInput(key="ARV-1:revoke:RITM-1:grant", grant_key=key, revoked_by="carol")
    assert race(6, lambda _: grants.revoke_grant(retried)) == [True] * 6  # one revocation, retried at once
    other = fulfil(database, "RITM-2", "grant_vpn", "bob", duration=30)
    answers = race(6, lambda i: grants.revoke_grant(RevokeInput(key=f"ARV-{i}:revoke", grant_key=other,
                                                                revoked_by="carol")))
    assert sorted(answers) == [False] * 5 + [True]
