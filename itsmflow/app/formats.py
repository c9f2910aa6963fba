"""Times and error text as every front end shows them (no click, no temporalio)."""

from __future__ import annotations

import re
from datetime import datetime, timezone


def iso_utc(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


def short_time(moment: datetime | str | None) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def first_line(err: BaseException) -> str:
    """The useful part of an SDK message (core errors nest the OS reason in `message: "..."`)."""
    text = str(err).strip()
    reason = re.findall(r'message: "([^"]+)"', text)
    if reason:
        return reason[-1].lower()
    return text.splitlines()[0][:300] if text else ""
