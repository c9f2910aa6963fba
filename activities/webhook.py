"""The webhook activity: POST a JSON payload with an Idempotency-Key header, recorded in
the notification ledger so a retried activity never posts twice.

Only to destinations the worker allows (`ITSM_WEBHOOK_ALLOW`, see activities/destinations.py):
a policy names the URL, and a forged policy must not reach the worker's internal network."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import Database, utc_text
from activities.destinations import AllowList, DestinationRefused, pinned_connection, vet
from activities.metrics import count
from activities.models import WebhookInput, WebhookResult
from itsmflow.errors import WEBHOOK_REJECTED

RETRYABLE_CLIENT_ERRORS = {408, 429}


def rejected(message: str) -> ApplicationError:
    """Not worth sending again: the callers' retry policy lists WEBHOOK_REJECTED as non-retryable."""
    return ApplicationError(message, type=WEBHOOK_REJECTED)


class WebhookActivities:
    def __init__(self, db: Database, timeout: float = 10.0, allow: AllowList | None = None) -> None:
        """`allow` defaults to `ITSM_WEBHOOK_ALLOW`; a bad entry raises WebhookAllowListError here,
        when the worker is built, not at the first page."""
        self.db = db
        self.timeout = timeout
        self.allow = allow if allow is not None else AllowList.from_env()

    @activity.defn(name="post_webhook")
    def post_webhook(self, request: WebhookInput) -> WebhookResult:
        """2xx → recorded; 5xx, 408, 429, timeouts → raise (retried per policy); 3xx (never
        followed), other 4xx, non-HTTP URLs and refused destinations → non-retryable:
        retrying a bad request never helps. A refused destination is never connected to."""
        with self.db.transaction() as cur:
            if cur.one("SELECT 1 FROM notification_ledger WHERE idempotency_key = ?", (request.key,)):
                return WebhookResult(key=request.key, status=0, duplicate=True)
        try:
            destination = vet(request.url, self.allow)
        except DestinationRefused as refused:
            count("webhooks_refused", "webhook posts refused by the destination allow-list")
            raise rejected(str(refused)) from None
        body = json.dumps(request.payload).encode()
        connection = pinned_connection(destination, self.timeout)
        try:
            connection.request("POST", destination.path, body=body, headers={
                "Content-Type": "application/json", "Idempotency-Key": request.key, "User-Agent": "itsmflow"})
            status = connection.getresponse().status
        finally:
            connection.close()
        if not 200 <= status < 300:
            count("webhooks_failed", "webhook posts answered with an error", status=str(status))
            if 300 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS:
                followed = " (redirects are not followed)" if status < 400 else ""
                raise rejected(f"webhook {request.url} answered {status}{followed}")
            raise RuntimeError(f"webhook {request.url} answered {status}")
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO notification_ledger (idempotency_key, message_id, channel, recipients, subject, sent_at) "
                "VALUES (?, ?, 'webhook', ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (request.key, request.key, json.dumps([request.url]),
                 str(request.payload.get("summary") or "webhook"), utc_text(datetime.now(timezone.utc))),
            )
        count("webhooks_sent", "webhook posts delivered")
        activity.logger.info("webhook delivered", extra={"itsm": {"key": request.key, "status": status}})
        return WebhookResult(key=request.key, status=status)
