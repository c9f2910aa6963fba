"""Notifications through a real SMTP server (aiosmtpd) and the ledger's idempotency."""

from __future__ import annotations

import email
import json

import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.channels import OutboxChannel, SmtpChannel, channel_from_env
from activities.models import NotifyInput, Recipient
from activities.notify import NotifyActivities, message_id, render
from tests.activities import not_retried
from worker.server import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp():
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def _request(key: str, title: str = "Patch web-01") -> NotifyInput:
    change = {"id": "CHG-20261124-AB12", "title": title, "type": "normal", "risk": "low", "cis": ["web-01"],
              "planned_start": "2026-11-24T22:00:00Z", "planned_end": "2026-11-24T23:00:00Z", "state": "closed",
              "requested_by": "alice", "close_code": "successful", "implemented_by": "erin",
              "implementation_notes": "", "notices": [], "reason": ""}
    return NotifyInput(key=key, template="change/change_closed", context={"change": change},
                       recipients=[Recipient(username="alice", email="alice@acme.example")])


def test_email_reaches_a_real_smtp_server_once(db, smtp):
    inbox, port = smtp
    activities = NotifyActivities(db, SmtpChannel(host="127.0.0.1", port=port, sender="itsm@acme.example"))
    first = ActivityEnvironment().run(activities.notify, _request("CHG-20261124-AB12:closed"))
    again = ActivityEnvironment().run(activities.notify, _request("CHG-20261124-AB12:closed"))
    assert (first.duplicate, again.duplicate) == (False, True)
    assert len(inbox.messages) == 1
    sent = inbox.messages[0]
    assert sent["Subject"] == "[CHG-20261124-AB12] Closed (successful): Patch web-01"
    assert sent["To"] == "alice@acme.example"
    assert sent["Message-ID"] == message_id("CHG-20261124-AB12:closed")
    assert sent["X-Itsm-Key"] == "CHG-20261124-AB12:closed"
    assert sent.is_multipart() and [p.get_content_type() for p in sent.get_payload()] == ["text/plain", "text/html"]
    with db.transaction() as cur:
        assert cur.all("SELECT idempotency_key, channel FROM notification_ledger") == [
            ("CHG-20261124-AB12:closed", "email")]


def test_smtp_down_raises_so_the_activity_retries(db):
    closed_port = free_port()
    activities = NotifyActivities(db, SmtpChannel(host="127.0.0.1", port=closed_port, timeout=2))
    with pytest.raises(OSError):
        ActivityEnvironment().run(activities.notify, _request("CHG-20261124-AB12:down"))
    with db.transaction() as cur:
        assert cur.all("SELECT * FROM notification_ledger") == []


HOSTILE = "{{ 7*7 }} {% for x in ().__class__.__mro__ %}x{% endfor %} <script>alert(1)</script>"


def test_user_text_renders_inert():
    subject, text, html = render("change/change_closed", _request("k", HOSTILE).context)
    assert "{{ 7*7 }}" in subject and "49" not in subject
    assert "<script>" in text  # plain text carries it literally
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("template, context", [
    ("change/change_closed", {"change": {"id": "CHG-1", "title": "t", "close_code": "failed", "implemented_by": "erin",
                                         "implementation_notes": HOSTILE}}),
    ("change/change_rejected", {"change": {"id": "CHG-1", "title": "t", "reason": HOSTILE}}),
    ("incident/incident_resolved", {"incident": {"id": "INC-1", "title": "t", "resolution_code": "fixed",
                                                 "resolution_notes": HOSTILE}}),
    ("problem/known_error", {"problem": {"id": "PRB-1", "title": "t", "ci": "lb-01", "workaround": HOSTILE,
                                         "root_cause": HOSTILE}}),
])
def test_notes_reasons_and_workarounds_render_inert(template, context):
    """Free text that people type (notes, reasons, workarounds, root causes) is data in every
    template that shows it: never evaluated, escaped in the HTML part."""
    class Filled(dict):  # every other field the template reads: plain text
        def __missing__(self, key):
            return "plain"

    subject, text, html = render(template, {name: Filled(fields) for name, fields in context.items()})
    assert "{{ 7*7 }}" in text and "49" not in text and "<script>" in text
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_channel_from_env():
    assert isinstance(channel_from_env({}), OutboxChannel)
    smtp = channel_from_env({"ITSM_SMTP_HOST": "mail", "ITSM_SMTP_PORT": "2525", "ITSM_SMTP_STARTTLS": "true"})
    assert (smtp.host, smtp.port, smtp.starttls) == ("mail", 2525, True)


def test_outbox_is_idempotent_by_key_even_without_the_ledger(tmp_path):
    from activities.channels import Message

    outbox = OutboxChannel(tmp_path / "outbox.jsonl")
    message = Message(key="CHG-1:closed", message_id="<m@itsmflow>", to=["a@x"], subject="s", text="t")
    other = Message(key="CHG-1:closed.2", message_id="<n@itsmflow>", to=["a@x"], subject="s", text="t")
    for sent in (message, message, other, message):
        outbox.send(sent)
    keys = [line.split('"key": ')[1].split(",")[0] for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert keys == ['"CHG-1:closed"', '"CHG-1:closed.2"']


def test_outbox_instances_sharing_a_file_see_each_others_keys(tmp_path):
    """Two workers on one outbox: each catches up on what the other appended."""
    from activities.channels import Message

    path = tmp_path / "outbox.jsonl"
    first, second = OutboxChannel(path), OutboxChannel(path)
    one = Message(key="INC-1:opened", message_id="<1@itsmflow>", to=["a@x"], subject="s", text="t")
    two = Message(key="INC-1:resolved.1", message_id="<2@itsmflow>", to=["a@x"], subject="s", text="t")
    first.send(one)
    second.send(one)
    second.send(two)
    first.send(two)
    with path.open("ab") as torn:  # a crash mid-line must not hide later keys
        torn.write(b'{"key": "INC-1:torn"')
    first.send(one)
    three = Message(key="INC-1:closed", message_id="<3@itsmflow>", to=["a@x"], subject="s", text="t")
    second.send(three)
    first.send(three)
    keys = [json.loads(line)["key"] for line in path.read_text().splitlines() if line.endswith("}")]
    assert keys == ["INC-1:opened", "INC-1:resolved.1", "INC-1:closed"]


# --- a page is never lost to formatting (issue 13) -------------------------------------------------

def test_a_title_with_line_breaks_still_pages_on_one_subject_line(db, smtp):
    """A newline in a title once silenced every email of its run ("Header values may not
    contain linefeed"): the subject builder takes anything."""
    inbox, port = smtp
    activities = NotifyActivities(db, SmtpChannel(host="127.0.0.1", port=port, sender="itsm@acme.example"))
    title = "DB down\r\nBcc: everyone@evil.example\x1b]8;;http://evil\x07 \u2028now" + "x" * 400
    ActivityEnvironment().run(activities.notify, _request("CHG-20261124-AB12:closed", title))
    assert len(inbox.messages) == 1
    sent = inbox.messages[0]
    from email.header import decode_header, make_header

    subject = str(make_header(decode_header(sent["Subject"])))  # unfolded, decoded
    assert sent["Bcc"] is None and "\n" not in subject and "\x1b" not in subject and "\u2028" not in subject
    assert subject.startswith("[CHG-20261124-AB12] Closed (successful): DB down Bcc: everyone@evil.example")
    assert len(subject) <= 250 and subject.endswith("…")


def test_a_template_that_cannot_render_sends_the_safe_message(db, smtp):
    inbox, port = smtp
    activities = NotifyActivities(db, SmtpChannel(host="127.0.0.1", port=port, sender="itsm@acme.example"))
    broken = _request("INC-20261124-AB12:page.1").model_copy(update={"context": {}})  # the template needs `change`
    result = ActivityEnvironment().run(activities.notify, broken)
    assert result.recipients == 1 and len(inbox.messages) == 1
    sent = inbox.messages[0]
    assert sent["Subject"] == "[itsm] INC-20261124-AB12: change closed"
    assert "could not be formatted as usual (UndefinedError" in sent.get_payload()


def test_a_header_the_mail_library_refuses_falls_back_and_is_not_retried(db):
    class Picky:
        name, sent = "picky", []

        def send(self, message):
            if message.headers:
                raise ValueError("Header values may not contain linefeed or carriage return characters")
            self.sent.append(message)

    channel = Picky()
    ActivityEnvironment().run(NotifyActivities(db, channel).notify, _request("CHG-20261124-AB12:closed"))
    assert [m.subject for m in channel.sent] == ["[itsm] CHG-20261124-AB12: change closed"]
    always = type("Refusing", (), {"name": "refusing", "send": lambda self, message: (_ for _ in ()).throw(
        ValueError("bad address"))})()
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(NotifyActivities(db, always).notify, _request("CHG-20261124-AB12:again"))
    assert not_retried(refused.value) and "bad address" in refused.value.message
