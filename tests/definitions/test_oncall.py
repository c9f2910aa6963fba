from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from definitions.oncall import OnCallSchedule, Override, Rotation, round_robin

UTC = timezone.utc
ANCHOR = datetime(2026, 1, 5, 9, tzinfo=UTC)
WEEKLY = OnCallSchedule(name="net", rotation=Rotation(users=["dave", "frank", "erin"], handoff=ANCHOR))


def test_weekly_rotation_and_the_handoff_instant_belongs_to_the_next_user():
    assert WEEKLY.on_call(ANCHOR) == "dave"
    assert WEEKLY.on_call(ANCHOR + timedelta(days=7) - timedelta(microseconds=1)) == "dave"
    assert WEEKLY.on_call(ANCHOR + timedelta(days=7)) == "frank"
    assert WEEKLY.on_call(ANCHOR + timedelta(days=21)) == "dave"
    assert WEEKLY.next_handoff(ANCHOR + timedelta(days=1)) == ANCHOR + timedelta(days=7)


def test_rotation_extends_backwards_before_the_anchor():
    assert WEEKLY.on_call(ANCHOR - timedelta(seconds=1)) == "erin"
    assert WEEKLY.on_call(ANCHOR - timedelta(days=14)) == "frank"


def test_overrides_win_and_the_latest_starting_override_wins():
    start = ANCHOR + timedelta(days=1)
    schedule = WEEKLY.model_copy(update={"overrides": [
        Override(user="grace", start=start, end=start + timedelta(days=2)),
        Override(user="bob", start=start + timedelta(hours=12), end=start + timedelta(hours=18)),
    ]})
    assert schedule.on_call(start) == "grace"
    assert schedule.on_call(start + timedelta(hours=13)) == "bob"
    assert schedule.on_call(start + timedelta(hours=18)) == "grace"
    assert schedule.on_call(start + timedelta(days=2)) == "dave"


def test_turns_are_exact_durations_across_dst():
    new_york = ZoneInfo("America/New_York")
    anchor = datetime(2026, 3, 2, 9, tzinfo=new_york)  # before the March 8 DST change
    schedule = OnCallSchedule(name="ny", rotation=Rotation(users=["a", "b"], handoff=anchor))
    handoff = schedule.next_handoff(anchor + timedelta(days=8))
    assert handoff.astimezone(new_york).hour == 10  # 168 real hours later: 10:00 local after DST
    assert schedule.on_call(handoff) == "a"


def test_round_robin_and_validation():
    assert [round_robin(["x", "y"], turn) for turn in range(3)] == ["x", "y", "x"]
    with pytest.raises(ValueError):
        round_robin([], 0)
    with pytest.raises(ValidationError):
        Rotation(users=[], handoff=ANCHOR)
    with pytest.raises(ValidationError):
        Override(user="a", start=ANCHOR, end=ANCHOR)
    with pytest.raises(ValidationError):
        Rotation(users=["a"], handoff=datetime(2026, 1, 5))
