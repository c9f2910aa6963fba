"""Submission validation (`build_change`): what `itsm change submit` refuses before anything
starts, and how normal changes are fitted to windows and blackouts. Pure: no Temporal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from definitions.acme import CHANGE_POLICY, DEMO_CHANGE_POLICY
from definitions.change import ChangeType, WindowViolation
from definitions.windows import Blackout
from itsmflow.app.change_submit import SubmitError, build_change

HOUR = timedelta(hours=1)
NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)  # a Monday; the weeknight window opens at 22:00
TONIGHT = datetime(2026, 11, 23, 22, tzinfo=timezone.utc)


def change(**overrides):
    fields = dict(change_id="CHG-20261123-AB12", title="Patch web-01", cis=["web-01"], change_type=ChangeType.NORMAL,
                  start=TONIGHT, end=TONIGHT + HOUR, requested_by="alice", now=NOW)
    return build_change(**fields | overrides)


def refused(**overrides) -> str:
    with pytest.raises(SubmitError) as failure:
        change(**overrides)
    return str(failure.value)


def test_a_valid_normal_change_snapshots_policy_and_organisation():
    submitted = change(title="  Patch web-01  ", cis=["web-01", "web-02", "web-01"], outage=True)
    assert (submitted.title, submitted.cis, submitted.outage, submitted.submit_notes) == (
        "Patch web-01", ["web-01", "web-02"], True, [])
    assert (submitted.planned_start, submitted.planned_end) == (TONIGHT, TONIGHT + HOUR)
    assert (submitted.policy, submitted.organisation.name) == (CHANGE_POLICY, "acme")


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(title="  "), "--title must not be empty"),
    (dict(requested_by="mallory"), "unknown user 'mallory' (set --as or ITSM_USER)"),
    (dict(cis=[]), "at least one --ci is required"),
    (dict(cis=["web-01", "mainframe", "tape"]),
     "unknown CI 'mainframe', 'tape' (known: web-01, web-02, lb-01, db-prod-1)"),
    (dict(start=datetime(2026, 11, 23, 22)), "--start and --end need a UTC offset, e.g. 2026-11-24T22:00+00:00"),
    (dict(end=TONIGHT), "--end 2026-11-23T22:00:00+00:00 must be after --start 2026-11-23T22:00:00+00:00"),
    (dict(start=NOW - timedelta(minutes=6), end=NOW + HOUR), "--start 2026-11-23T11:54:00+00:00 is in the past"),
    (dict(end=TONIGHT + 13 * HOUR), "the change lasts 13:00:00, longer than the policy maximum 12:00:00"),
    (dict(template="restart-web-server"), "--template is only for --type standard"),
])
def test_refusals(overrides, message):
    assert refused(**overrides) == message


def test_past_tolerance_and_emergencies():
    assert change(start=NOW - timedelta(minutes=5), end=NOW + HOUR, policy=DEMO_CHANGE_POLICY).planned_start == (
        NOW - timedelta(minutes=5))
    emergency = change(change_type=ChangeType.EMERGENCY, start=NOW - 3 * HOUR, end=NOW - HOUR)
    assert (emergency.planned_start, emergency.submit_notes) == (NOW - 3 * HOUR, [])
    assert refused(change_type=ChangeType.EMERGENCY, end=TONIGHT + 13 * HOUR).startswith("the change lasts 13:00:00")


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(), "--type standard needs --template (one of: restart-web-server, rotate-tls-certificate)"),
    (dict(template="reboot-db"), "unknown template 'reboot-db' (known: restart-web-server, rotate-tls-certificate)"),
    (dict(template="restart-web-server", cis=["web-01", "lb-01"]),
     "template 'restart-web-server' does not cover CI lb-01"),
    (dict(template="restart-web-server", end=TONIGHT + 2 * HOUR),
     "template 'restart-web-server' allows at most 1:00:00"),
    (dict(template="rotate-tls-certificate", cis=["lb-01"], start=NOW + HOUR, end=NOW + 2 * HOUR),
     "template 'rotate-tls-certificate' runs only in window 'weeknight'"),
])
def test_standard_change_refusals(overrides, message):
    assert refused(change_type=ChangeType.STANDARD, **overrides) == message


def test_standard_change_uses_its_template_window_and_skips_policy_windows():
    daytime = change(change_type=ChangeType.STANDARD, template="restart-web-server", start=NOW + HOUR,
                     end=NOW + 2 * HOUR)
    assert (daytime.planned_start, daytime.template, daytime.submit_notes) == (NOW + HOUR, "restart-web-server", [])
    tls = change(change_type=ChangeType.STANDARD, template="rotate-tls-certificate", cis=["lb-01"])
    assert tls.planned_start == TONIGHT


def test_outside_every_window_is_refused_with_the_next_slot():
    assert refused(start=NOW + HOUR, end=NOW + 2 * HOUR) == (
        "planned time 2026-11-23T13:00:00+00:00 to 2026-11-23T14:00:00+00:00 is outside every maintenance window "
        "(weeknight, weekend); next possible start: 2026-11-23T22:00:00+00:00")


def test_blackout_is_refused_with_the_next_slot():
    start = datetime(2027, 6, 29, 22, tzinfo=timezone.utc)
    assert refused(start=start, end=start + HOUR) == (
        "planned time 2027-06-29T22:00:00+00:00 to 2027-06-29T23:00:00+00:00 overlaps blackout 'fiscal-year-close' "
        "(2027-06-28T00:00:00+00:00 to 2027-07-03T00:00:00+00:00); next possible start: 2027-07-03T00:00:00+00:00")


def test_moving_policy_moves_to_the_next_slot_with_a_note():
    moving = CHANGE_POLICY.model_copy(update={"outside_window": WindowViolation.MOVE})
    moved = change(start=NOW + HOUR, end=NOW + 2 * HOUR, policy=moving)
    assert (moved.planned_start, moved.planned_end) == (TONIGHT, TONIGHT + HOUR)
    assert moved.submit_notes == [
        "planned time is outside every maintenance window (weeknight, weekend); moved to 2026-11-23T22:00:00+00:00 "
        "per policy acme-change"]


def test_no_slot_within_the_horizon_is_refused_even_when_moving():
    frozen = CHANGE_POLICY.model_copy(update={
        "outside_window": WindowViolation.MOVE,
        "blackouts": [Blackout(name="freeze", start=NOW, end=NOW + timedelta(days=365))],
    })
    assert refused(policy=frozen) == (
        "planned time 2026-11-23T22:00:00+00:00 to 2026-11-23T23:00:00+00:00 overlaps blackout 'freeze' "
        "(2026-11-23T12:00:00+00:00 to 2027-11-23T12:00:00+00:00); no slot in the next 90 days")
