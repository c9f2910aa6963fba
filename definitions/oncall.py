"""On-call schedules: a rotation of users with a handoff anchor and turn length, plus
overrides. "Who is on call at T" is a pure function. Turns are exact durations, so a
local handoff clock time shifts by an hour across a DST change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pydantic import AwareDatetime, Field, model_validator

from definitions.base import Duration, Model


class Override(Model):
    """`user` covers [start, end) instead of the rotation."""

    user: str
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "Override":
        if self.end <= self.start:
            raise ValueError("override end must be after its start")
        return self


class Rotation(Model):
    users: list[str] = Field(min_length=1)
    handoff: AwareDatetime
    length: Duration = timedelta(days=7)

    @model_validator(mode="after")
    def _positive(self) -> "Rotation":
        if self.length <= timedelta(0):
            raise ValueError("rotation length must be positive")
        return self


class OnCallSchedule(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    rotation: Rotation
    overrides: list[Override] = []

    def _anchor(self) -> datetime:
        # In UTC: Python subtracts datetimes sharing a tzinfo by wall clock, not exactly.
        return self.rotation.handoff.astimezone(timezone.utc)

    def _turn(self, at: datetime) -> int:
        return (at.astimezone(timezone.utc) - self._anchor()) // self.rotation.length

    def on_call(self, at: datetime) -> str:
        """The override covering `at` that started last, else the rotation's user (the
        instant of a handoff belongs to the next user; the rotation extends backwards)."""
        covering = [o for o in self.overrides if o.start <= at < o.end]
        if covering:
            return max(covering, key=lambda o: o.start).user
        users = self.rotation.users
        return users[self._turn(at) % len(users)]

    def next_handoff(self, at: datetime) -> datetime:
        return self._anchor() + (self._turn(at) + 1) * self.rotation.length


def round_robin(members: list[str], turn: int) -> str:
    if not members:
        raise ValueError("round robin over an empty group")
    return members[turn % len(members)]
