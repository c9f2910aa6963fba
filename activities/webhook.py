"""The webhook activity: POST a JSON payload with an Idempotency-Key header, recorded in
the notification ledger so a retried activity never posts twice."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from urllib.parse import urlparse

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import Database, utc_text
from activities.metrics import count
from activities.models import WebhookInput, WebhookResult

RETRYABLE_CLIENT_ERRORS = {408, 429}


class WebhookActivities:
    def __init__(self, db: Database, timeout: float = 10.0) -> None:
        self.db = db
        self.timeout = timeout

    @activity.defn(name="post_webhook")
    def post_webhook(self, request: WebhookInput) -> WebhookResult:
        """2xx → recorded; 5xx, 408, 429, timeouts → raise (retried per policy); other 4xx
        and non-HTTP URLs → non-retryable: retrying a bad request never helps."""
        if urlparse(request.url).scheme not in ("http", "https"):
            raise ApplicationError(f"webhook URL {request.url!r} is not http(s)", type="WebhookRejected",
                                   non_retryable=True)
        with self.db.transaction() as cur:
            if cur.one("SELECT 1 FROM notification_ledger WHERE idempotency_key = ?", (request.key,)):
                return WebhookResult(key=request.key, status=0, duplicate=True)
        body = json.dumps(request.payload).encode()
        post = urllib.request.Request(request.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": request.key, "User-Agent": "itsmflow"})
        try:
            with urllib.request.urlopen(post, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            count("webhooks_failed", "webhook posts answered with an error", status=str(err.code))
            if 400 <= err.code < 500 and err.code not in RETRYABLE_CLIENT_ERRORS:
                raise ApplicationError(f"webhook {request.url} answered {err.code}", type="WebhookRejected",
                                       non_retryable=True) from None
            raise RuntimeError(f"webhook {request.url} answered {err.code}") from None
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
