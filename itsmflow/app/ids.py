"""Business ids: `PREFIX-YYYYMMDD-XXXX` (UTC date, XXXX from [A-Z0-9]); each process declares
its prefix (`CHG`, `INC`, `REQ`, `RITM`, `TASK`, `PRB`, and a process owner's own). The
workflow id is the business id."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ID_PATTERN = re.compile(r"^([A-Z]{2,5})-\d{8}-[A-Z0-9]{4}$")


def _check(prefix: str) -> None:
    from itsmflow.processes import of_prefix

    if of_prefix(prefix) is None:
        raise ValueError(f"no loaded process has the id prefix {prefix!r}")


def new_id(prefix: str, now: datetime | None = None) -> str:
    import secrets  # here, not at import: the lean `runs show` path imports this module

    _check(prefix)
    day = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%d")
    return f"{prefix}-{day}-{''.join(secrets.choice(_ALPHABET) for _ in range(4))}"


def process_of(business_id: str) -> str | None:
    """The name of the process a business id belongs to (loads the declarations: not on the
    lean path unless a run lacks ItsmProcess)."""
    from itsmflow.processes import of_id

    process = of_id(business_id)
    return process.name if process else None


def keyed_id(prefix: str, key: str, day: datetime) -> str:
    """The id a start with idempotency key `key` takes on `day` (UTC): the same key gives the same id."""
    import hashlib

    _check(prefix)
    number = int.from_bytes(hashlib.sha256(f"{prefix}:{key}".encode()).digest()[:8], "big")
    suffix = "".join(_ALPHABET[(number // 36 ** i) % 36] for i in range(4))
    return f"{prefix}-{day.astimezone(timezone.utc):%Y%m%d}-{suffix}"
