"""Notification channels: small plugins behind one interface. The notify activity picks
email when SMTP is configured and the local outbox otherwise."""

from __future__ import annotations

import json
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Message:
    key: str
    message_id: str
    to: list[str]
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    decided_at: datetime | None = None  # when the run asked for it, on its clock (NotifyInput)


class Channel(Protocol):
    @property
    def name(self) -> str: ...  # read-only: a frozen dataclass's field satisfies it

    def send(self, message: Message) -> None: ...


@dataclass(frozen=True)
class SmtpChannel:
    """SMTP email. `ITSM_SMTP_HOST`, `_PORT` (25), `_FROM`, `_USER`/`_PASSWORD`, `_STARTTLS`."""

    host: str
    port: int = 25
    sender: str = "itsmflow@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0
    name: str = "email"

    def send(self, message: Message) -> None:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = self.sender, ", ".join(message.to), message.subject
        email["Message-ID"] = message.message_id
        for header, value in message.headers.items():
            email[header] = value
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(email)


class OutboxChannel:
    """A local JSON-lines outbox: what would have been sent, for demos and development.
    Idempotent by key on its own (under a file lock), so a worker that dies between
    writing a message and recording it in the ledger never writes it twice. Each process
    remembers the keys up to the offset it has read, so a send reads only the lines other
    workers appended since (O(new lines), not O(file))."""

    def __init__(self, path: Path, name: str = "outbox") -> None:
        import threading

        self.path, self.name = Path(path), name
        self._keys: set[str] = set()
        self._offset = 0
        self._lock = threading.Lock()

    def _catch_up(self, outbox) -> int:
        """Read complete lines appended since our offset; returns the file's size."""
        end = outbox.seek(0, os.SEEK_END)
        if end < self._offset:  # truncated or replaced: start over
            self._keys, self._offset = set(), 0
        outbox.seek(self._offset)
        for raw in outbox:
            if not raw.endswith(b"\n"):
                break  # a line still being written (or torn by a crash)
            self._offset += len(raw)
            try:
                self._keys.add(json.loads(raw)["key"])
            except (ValueError, KeyError, TypeError):
                continue
        return end

    def send(self, message: Message) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "message_id": message.message_id, "key": message.key, "to": message.to,
            "subject": message.subject, "text": message.text,
        }
        with self._lock, self.path.open("a+b") as outbox:
            fcntl.flock(outbox, fcntl.LOCK_EX)
            end = self._catch_up(outbox)
            if message.key in self._keys:
                return
            torn = b"\n" if end > self._offset else b""  # end a line torn by a crash first
            outbox.write(torn + (json.dumps(record) + "\n").encode())
            outbox.flush()
            self._offset = outbox.tell()
            self._keys.add(message.key)


def channel_from_env(env: dict[str, str] | None = None) -> Channel:
    env = dict(os.environ if env is None else env)
    host = env.get("ITSM_SMTP_HOST")
    if host:
        return SmtpChannel(
            host=host,
            port=int(env.get("ITSM_SMTP_PORT", "25")),
            sender=env.get("ITSM_SMTP_FROM", "itsmflow@localhost"),
            username=env.get("ITSM_SMTP_USER") or None,
            password=env.get("ITSM_SMTP_PASSWORD") or None,
            starttls=env.get("ITSM_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
        )
    return OutboxChannel(Path(env.get("ITSM_OUTBOX", ".itsm/outbox.jsonl")))
