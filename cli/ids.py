"""Business ids: `CHG|INC|REQ|RITM|TASK|PRB-YYYYMMDD-XXXX` (UTC date, XXXX from [A-Z0-9]).
The workflow id is the business id."""

from __future__ import annotations

import re
from datetime import datetime, timezone

PROCESSES = {"CHG": "change", "INC": "incident", "REQ": "request", "RITM": "item", "TASK": "task", "PRB": "problem"}
PREFIXES = tuple(PROCESSES)
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ID_PATTERN = re.compile(r"^(CHG|INC|REQ|RITM|TASK|PRB)-\d{8}-[A-Z0-9]{4}$")


def new_id(prefix: str, now: datetime | None = None) -> str:
    import secrets  # here, not at import: the lean `runs show` path imports this module

    assert prefix in PREFIXES
    day = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%d")
    return f"{prefix}-{day}-{''.join(secrets.choice(_ALPHABET) for _ in range(4))}"


def process_of(business_id: str) -> str | None:
    return PROCESSES.get(business_id.split("-", 1)[0])


def keyed_id(prefix: str, key: str, day: datetime) -> str:
    """The id a start with idempotency key `key` takes on `day` (UTC): the same key gives the same id."""
    import hashlib

    assert prefix in PREFIXES
    number = int.from_bytes(hashlib.sha256(f"{prefix}:{key}".encode()).digest()[:8], "big")
    suffix = "".join(_ALPHABET[(number // 36 ** i) % 36] for i in range(4))
    return f"{prefix}-{day.astimezone(timezone.utc):%Y%m%d}-{suffix}"
