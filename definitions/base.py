"""Shared building blocks for policy definitions: durations, versioned definitions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> object:
    """Accept `30m`, `4h`, `2d`, a number of seconds, an ISO 8601 duration or a timedelta."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


def format_duration(value: timedelta, units: str = "dhm") -> str:
    """The shortest exact `Nd|Nh|Nm|Ns` spelling, so snapshots read as they were written
    (fractions of a second are kept: `1.5s`)."""
    if value.microseconds:
        return f"{value.total_seconds():.6f}".rstrip("0") + "s"
    seconds = int(value.total_seconds())
    for unit in units:
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def format_hours(value: timedelta) -> str:
    """Like format_duration, in hours at most (SLA targets have no days unit)."""
    return format_duration(value, units="hm")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA timezone name that zoneinfo (with tzdata) knows."""


class Model(BaseModel):
    """Strict base: unknown keys in a definition file are mistakes, not extensions."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Definition(Model):
    """A named, versioned policy. The version is snapshotted into each run that uses it."""

    if TYPE_CHECKING:  # each kind's own field, `kind: Literal["catalog"] = "catalog"`
        kind: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str = ""
