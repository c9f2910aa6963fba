"""Business ids: `CHG|INC|REQ|RITM|TASK|PRB-YYYYMMDD-XXXX` (UTC date, XXXX from [A-Z0-9]).
The workflow id is the business id."""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime, timezone

PREFIXES = ("CHG", "INC", "REQ", "RITM", "TASK", "PRB")
_ALPHABET = string.ascii_uppercase + string.digits
ID_PATTERN = re.compile(r"^(CHG|INC|REQ|RITM|TASK|PRB)-\d{8}-[A-Z0-9]{4}$")


def new_id(prefix: str, now: datetime | None = None) -> str:
    assert prefix in PREFIXES
    day = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%d")
    return f"{prefix}-{day}-{''.join(secrets.choice(_ALPHABET) for _ in range(4))}"


def process_of(business_id: str) -> str | None:
    return {"CHG": "change", "INC": "incident", "REQ": "request", "RITM": "item", "TASK": "task",
            "PRB": "problem"}.get(business_id.split("-", 1)[0])
