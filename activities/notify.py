"""The notification activity: render a jinja2 template (sandboxed, HTML autoescaped),
send it through a channel, and record it in the ledger keyed by the idempotency key."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from functools import lru_cache

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import Channel, Message
from activities.db import Database, utc_text
from activities.metrics import count
from activities.models import NotifyInput, NotifyResult
from definitions.text import one_line
from itsmflow.errors import NOTIFICATION_REJECTED


@lru_cache(maxsize=None)
def _package_templates(templates: str) -> PackageLoader:
    package, _, folder = templates.partition(":")
    return PackageLoader(package, folder)


class ProcessTemplates(BaseLoader):
    """The templates a process's own package ships (its declaration's `templates`,
    "package:folder"), found under the process's name (`access-review/attest_requested.txt.j2`).
    The built-in folders are searched first, so a package cannot shadow one of theirs."""

    def get_source(self, environment: Environment, template: str):
        from itsmflow.processes import processes

        name, _, rest = template.partition("/")
        process = next((p for p in processes() if p.name == name and p.templates), None)
        if process is None or process.templates is None or not rest:
            raise TemplateNotFound(template)
        return _package_templates(process.templates).get_source(environment, rest)


TEMPLATES = SandboxedEnvironment(
    loader=ChoiceLoader([PackageLoader("activities", "templates"), ProcessTemplates()]),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
    undefined=StrictUndefined,
)


def message_id(key: str) -> str:
    """Deterministic, so a message re-sent after a crash can be deduplicated downstream."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@itsmflow>"


MAX_SUBJECT = 250


def subject_line(text: object) -> str:
    """A subject that any mail header takes: one line, control characters removed, bounded."""
    return one_line(text, MAX_SUBJECT) or "itsmflow notification"


def render(template: str, context: dict) -> tuple[str, str, str]:
    """Returns (subject, text, html) for `<folder>/<name>` (`<name>.txt.j2` holds blocks
    `subject` and `body`; the HTML alternative wraps the same body, autoescaped)."""
    text_template = TEMPLATES.get_template(f"{template}.txt.j2")
    ctx = text_template.new_context(context)
    subject = subject_line("".join(text_template.blocks["subject"](ctx)))
    body = "".join(text_template.blocks["body"](ctx)).strip() + "\n"
    html = TEMPLATES.get_template("layout.html.j2").render(subject=subject, body=body)
    return subject, body, html


def fallback(request: NotifyInput, reason: str) -> tuple[str, str, str]:
    """A message that always goes out: a page is never lost to a template or a header."""
    run_id, _, step = request.key.partition(":")
    subject = subject_line(f"[itsm] {run_id}: {request.template.rsplit('/', 1)[-1].replace('_', ' ')}")
    text = (f"{run_id} needs your attention ({step}).\n\nThis message could not be formatted as usual "
            f"({one_line(reason, 300)}); `itsm runs show {run_id}` has the details.\n")
    return subject, text, ""


def safe_render(request: NotifyInput) -> tuple[str, str, str]:
    try:
        return render(request.template, request.context)
    except Exception as err:  # noqa: BLE001 (any template error: send the fallback, never retry)
        activity.logger.warning("notification %s could not be rendered: %s", request.key, err)
        return fallback(request, f"{type(err).__name__}: {err}")


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
        subject, text, html = safe_render(request)
        recipients = [r.email for r in request.recipients]
        if recipients:
            message = Message(key=request.key, message_id=mid, to=recipients, subject=subject, text=text, html=html,
                              headers={"X-Itsm-Key": one_line(request.key, 500)}, decided_at=request.decided_at)
            try:
                self.channel.send(message)
            except ValueError as err:  # a header the mail library refuses: the safe form goes out instead
                subject, text, html = fallback(request, f"{type(err).__name__}: {err}")
                try:
                    self.channel.send(Message(key=request.key, message_id=mid, to=recipients, subject=subject,
                                              text=text, html=html, headers={}, decided_at=request.decided_at))
                except ValueError as again:
                    raise ApplicationError(f"notification {request.key} cannot be sent: {again}",
                                           type=NOTIFICATION_REJECTED) from None
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
