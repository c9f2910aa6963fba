"""Access grants as the CMDB records them: read the grants still in force, and revoke one.

A grant is a `fulfillment_record` row that a request item's automated task wrote (a VPN or a
database grant, activities/fulfillment.py), keyed by item id + task; it is in force until its
`undone_at` is set, by the item itself (a VPN grant's duration ran out, a compensation) or by a
revocation here. A revocation is recorded in `grant_revocation` under its own idempotency key
(workflow id + step), in the same transaction: a retried revoke answers what the first attempt
did and changes nothing, and a grant revoked elsewhere meanwhile stays as it is."""

from __future__ import annotations

from datetime import datetime, timezone

from temporalio import activity

from activities.db import Database, utc_text
from activities.models import Grant, GrantQuery, RevokeInput


def _placeholders(values: list[str]) -> str:
    return ", ".join("?" for _ in values)


class GrantActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="list_grants")
    def list_grants(self, query: GrantQuery) -> list[Grant]:
        """The grants in force that `query` selects, oldest first (at most `query.limit`)."""
        where, params = ["undone_at IS NULL"], []
        for column, values in (("action", query.actions), ("subject", query.grantees), ("resource", query.names)):
            if values:
                where.append(f"{column} IN ({_placeholders(values)})")
                params += values
        if query.as_of is not None:
            where.append("created_at <= ?")
            params.append(utc_text(query.as_of))
        with self.db.transaction() as cur:
            rows = cur.all(
                "SELECT idempotency_key, subject, resource, detail, action, item_id, created_at "
                f"FROM fulfillment_record WHERE {' AND '.join(where)} ORDER BY created_at, idempotency_key LIMIT ?",
                (*params, query.limit),
            )
        return [Grant(key=key, grantee=grantee, name=name, detail=detail, action=action, item_id=item_id,
                      granted_at=datetime.fromisoformat(granted_at))
                for key, grantee, name, detail, action, item_id, granted_at in rows]

    @activity.defn(name="revoke_grant")
    def revoke_grant(self, revoke: RevokeInput) -> bool:
        """Revoke the grant `revoke.grant_key`: True if this revocation ended it, False if it was
        no longer in force (expired, revoked before, or unknown). Idempotent by `revoke.key`."""
        with self.db.transaction() as cur:
            cur.serialize(f"grant_revocation:{revoke.key}")
            done = cur.one("SELECT revoked FROM grant_revocation WHERE idempotency_key = ?", (revoke.key,))
            if done is not None:
                return bool(done[0])
            now = utc_text(datetime.now(timezone.utc))
            revoked = bool(cur.execute(
                "UPDATE fulfillment_record SET undone_at = ? WHERE idempotency_key = ? AND undone_at IS NULL",
                (now, revoke.grant_key),
            ))
            cur.execute(
                "INSERT INTO grant_revocation (idempotency_key, grant_key, revoked_by, reason, revoked, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (revoke.key, revoke.grant_key, revoke.revoked_by, revoke.reason, int(revoked), now),
            )
        return revoked
