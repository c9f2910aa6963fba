"""The notification activity: render a jinja2 template (sandboxed, HTML autoescaped),
send it through a channel, and record it in the ledger keyed by the idempotency key."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from jinja2 import PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from temporalio import activity

from activities.channels import Channel, Message
from activities.db import Database, utc_text
from activities.metrics import count
from activities.models import NotifyInput, NotifyResult

TEMPLATES = SandboxedEnvironment(
    loader=PackageLoader("activities", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
    undefined=StrictUndefined,
)


def message_id(key: str) -> str:
    """Deterministic, so a message re-sent after a crash can be deduplicated downstream."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@itsmflow>"


def render(template: str, context: dict) -> tuple[str, str, str]:
    """Returns (subject, text, html) for `<folder>/<name>` (`<name>.txt.j2` holds blocks
    `subject` and `body`; the HTML alternative wraps the same body, autoescaped)."""
    text_template = TEMPLATES.get_template(f"{template}.txt.j2")
    ctx = text_template.new_context(context)
    subject = "".join(text_template.blocks["subject"](ctx)).strip()
    body = "".join(text_template.blocks["body"](ctx)).strip() + "\n"
    html = TEMPLATES.get_template("layout.html.j2").render(subject=subject, body=body)
    return subject, body, html


class NotifyActivities:
    def __init__(self, db: Database, channel: Channel) -> None:
        self.db = db
        self.channel = channel

    @activity.defn(name="notify")
    def notify(self, request: NotifyInput) -> NotifyResult:
        mid = message_id(request.key)
        with self.db.transaction() as cur:
            if cur.one("SELECT 1 FROM notification_ledger WHERE idempotency_key = ?", (request.key,)):
                count("notifications_duplicate", "notifications not sent again (already in the ledger)",
                      channel=self.channel.name)
                return NotifyResult(key=request.key, channel=self.channel.name, message_id=mid, duplicate=True)
        subject, text, html = render(request.template, request.context)
        recipients = [r.email for r in request.recipients]
        if recipients:
            self.channel.send(
                Message(key=request.key, message_id=mid, to=recipients, subject=subject, text=text, html=html,
                        headers={"X-Itsm-Key": request.key})
            )
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO notification_ledger (idempotency_key, message_id, channel, recipients, subject, sent_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (request.key, mid, self.channel.name, json.dumps(recipients), subject,
                 utc_text(datetime.now(timezone.utc))),
            )
        count("notifications_sent", "notifications sent", channel=self.channel.name,
              template=request.template.split("/")[0])
        activity.logger.info("notification sent", extra={"itsm": {
            "key": request.key, "channel": self.channel.name, "template": request.template,
            "recipients": len(recipients)}})
        return NotifyResult(key=request.key, channel=self.channel.name, message_id=mid, recipients=len(recipients))
