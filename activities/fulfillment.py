"""Automated fulfillment actions and their compensations: VPN and database grants,
asset records, directory accounts. Each writes one `fulfillment_record` row keyed by
item id + task, so a retry never doubles and an undo is recorded, never deleted."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import Database, utc_text
from activities.models import ActionInput, ActionResult
from itsmflow.errors import UNKNOWN_ACTION


def _vpn(request: ActionInput) -> tuple[str, str]:
    return "vpn", f"{request.variables.get('duration')} days"


def _db(request: ActionInput) -> tuple[str, str]:
    return str(request.variables.get("database")), str(request.variables.get("role"))


def _asset(request: ActionInput) -> tuple[str, str]:
    return f"laptop:{request.item_id}", str(request.variables.get("model"))


def _account(request: ActionInput) -> tuple[str, str]:
    return f"account:{request.variables.get('name')}", str(request.variables.get("team"))


ACTIONS: dict[str, Callable[[ActionInput], tuple[str, str]]] = {
    "grant_vpn": _vpn, "grant_db": _db, "record_asset": _asset, "create_account": _account,
}


class FulfillmentActivities:
    def __init__(self, db: Database, failing: set[str] | None = None) -> None:
        self.db = db
        self.failing = failing or set()  # actions whose backend is down (tests, drills)

    @activity.defn(name="run_action")
    def run_action(self, request: ActionInput) -> ActionResult:
        describe = ACTIONS.get(request.action)
        if describe is None:
            raise ApplicationError(f"unknown action {request.action!r}", type=UNKNOWN_ACTION)
        if request.action in self.failing:
            raise RuntimeError(f"{request.action}: backend unavailable")
        resource, detail = describe(request)
        with self.db.transaction() as cur:
            written = cur.execute(
                "INSERT INTO fulfillment_record "
                "(idempotency_key, item_id, action, subject, resource, detail, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (request.key, request.item_id, request.action, request.requested_for, resource, detail,
                 utc_text(datetime.now(timezone.utc))),
            )
        return ActionResult(key=request.key, action=request.action, resource=resource, already_done=not written)

    @activity.defn(name="undo_action")
    def undo_action(self, key: str) -> bool:
        """Revoke / release what `key` did; False if it was already undone (or never done)."""
        with self.db.transaction() as cur:
            return bool(cur.execute(
                "UPDATE fulfillment_record SET undone_at = ? WHERE idempotency_key = ? AND undone_at IS NULL",
                (utc_text(datetime.now(timezone.utc)), key),
            ))
