"""The KPI arithmetic on hand-made visibility rows, with exact numbers: a week of incidents,
changes, requests and items with open, breached, excluded and continued-as-new runs."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from itsmflow.app.kpi_html import render_html
from itsmflow.app.kpi_render import duration, metric_rows, render_csv, render_text
from itsmflow.app.kpis import Run, age_bucket, compute, default_window, merge, open_at, percentile

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
UNTIL = T0 + timedelta(days=7)
H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)


def incident(id, started, priority, *, acked=None, resolved=None, breaches=(), state=None, status="running",
             outcome=None):
    return Run(id=id, process="incident", started=started, status=status, priority=priority,
               state=state or ("resolved" if resolved else "in_progress" if acked else "new"),
               acked_at=started + acked if acked else None, resolved_at=started + resolved if resolved else None,
               outcome=outcome or ("fixed" if resolved else None), breaches=breaches)


def finished(id, process, started, outcome, took, *, type=None, breaches=(), state=None):
    return Run(id=id, process=process, started=started, status="completed", closed=started + took, type=type,
               state=state or outcome, outcome=outcome, resolved_at=started + took, breaches=breaches)


def open_run(id, process, started, state, *, type=None):
    return Run(id=id, process=process, started=started, state=state, type=type)


WEEK = [
    incident("i1", T0 + H, "P1", acked=10 * M, resolved=2 * H),
    incident("i2", T0 + D, "P1", acked=20 * M, resolved=5 * H, breaches=("resolution", "response"),
             state="closed", status="completed"),
    incident("i3", T0 + 2 * D, "P1", breaches=("response",)),
    incident("i4", T0 + 3 * D, "P2", acked=30 * M),
    incident("i5", T0 + 6 * D + 23 * H, "P2"),
    incident("i6", T0 - 2 * D, "P3", acked=5 * M, resolved=2 * D + H),
    incident("i7", T0 + D, "P1", status="terminated"),
    Run(id="i8", process="incident", started=T0 + H, state="resolved", priority="P4"),
    finished("c1", "change", T0 + H, "successful", 3 * H, type="normal", state="closed"),
    finished("c2", "change", T0 + H, "failed", 3 * H, type="normal", state="closed"),
    finished("c3", "change", T0 + 2 * H, "backed-out", H, type="emergency", state="closed"),
    finished("c4", "change", T0 + 3 * H, "successful", H, type="standard", state="closed"),
    finished("c5", "change", T0 + 4 * H, "rejected", H, type="normal"),
    finished("c6", "change", T0 + 5 * H, "canceled", H, type="emergency"),
    open_run("c7", "change", T0 + 5 * D, "scheduled", type="normal"),
    finished("c8", "change", T0 + 6 * D, "successful", D + H, type="normal", state="closed"),
    finished("r1", "request", T0, "fulfilled", H),
    finished("r2", "request", T0, "fulfilled", 2 * H),
    finished("r3", "request", T0, "fulfilled", 4 * H),
    finished("r4", "request", T0, "fulfilled", 10 * H),
    finished("r5", "request", T0, "rejected", H),
    open_run("r6", "request", T0 + D, "fulfilling"),
    finished("it1", "item", T0, "fulfilled", H),
    finished("it2", "item", T0, "fulfilled", 3 * D, breaches=("fulfillment",)),
    open_run("it3", "item", T0 + 4 * D, "fulfilling"),
    finished("it4", "item", T0, "rejected", H),
    open_run("p1", "problem", T0 - 20 * D, "investigating"),
]


@pytest.fixture(scope="module")
def report():
    return compute(WEEK, T0, UNTIL)


def test_incidents_per_priority(report):
    p1, p2 = report["incidents"]["by_priority"]["P1"], report["incidents"]["by_priority"]["P2"]
    assert p1 == {
        "opened": 3, "acknowledged": 2, "resolved": 2, "mtta_seconds": 900.0, "mttr_seconds": 12600.0,
        "response_sla": {"met": 1, "breached": 2, "pending": 0, "compliance_percent": 33.33},
        "resolution_sla": {"met": 1, "breached": 1, "pending": 1, "compliance_percent": 50.0},
    }
    assert p2 == {
        "opened": 2, "acknowledged": 1, "resolved": 0, "mtta_seconds": 1800.0, "mttr_seconds": None,
        "response_sla": {"met": 1, "breached": 0, "pending": 1, "compliance_percent": 100.0},
        "resolution_sla": {"met": 0, "breached": 0, "pending": 2, "compliance_percent": None},
    }
    empty = {"met": 0, "breached": 0, "pending": 0, "compliance_percent": None}
    for quiet in ("P3", "P4"):  # i6 opened before the window; i8 is untracked
        assert report["incidents"]["by_priority"][quiet] == {
            "opened": 0, "acknowledged": 0, "resolved": 0, "mtta_seconds": None, "mttr_seconds": None,
            "response_sla": empty, "resolution_sla": empty}
    assert list(report["incidents"]["by_priority"]) == ["P1", "P2", "P3", "P4"]


def test_incidents_overall(report):
    assert report["incidents"]["all"] == {
        "opened": 5, "acknowledged": 3, "resolved": 2, "mtta_seconds": 1200.0, "mttr_seconds": 12600.0,
        "response_sla": {"met": 2, "breached": 2, "pending": 1, "compliance_percent": 50.0},
        "resolution_sla": {"met": 1, "breached": 1, "pending": 3, "compliance_percent": 50.0},
    }


def test_changes(report):
    assert report["changes"] == {
        "total": 8, "open": 1, "by_type": {"normal": 5, "standard": 1, "emergency": 2},
        "outcomes": {"successful": 3, "failed": 1, "backed-out": 1, "rejected": 1, "canceled": 1},
        "success_rate_percent": 60.0, "emergency_share_percent": 25.0,
    }


def test_requests_and_item_sla(report):
    assert report["requests"] == {
        "total": 6, "open": 1,
        "outcomes": {"fulfilled": 4, "failed": 0, "rejected": 1, "canceled": 0},
        "fulfillment_seconds": {"count": 4, "p50": 7200.0, "p90": 36000.0, "mean": 15300.0},
        "item_fulfillment_sla": {"met": 1, "breached": 1, "pending": 1, "compliance_percent": 50.0},
    }


def test_backlog_at_until(report):
    zero = {"<1d": 0, "1-3d": 0, "3-7d": 0, ">7d": 0}
    assert report["backlog"] == {
        "as_of": "2026-03-09T00:00:00Z", "total": 8,
        "by_process": {
            "change": {"total": 2, "by_state": {"finished_later": {**zero, "1-3d": 1, "total": 1},
                                                "scheduled": {**zero, "1-3d": 1, "total": 1}}},
            "incident": {"total": 3, "by_state": {"in_progress": {**zero, "3-7d": 1, "total": 1},
                                                  "new": {**zero, "<1d": 1, "3-7d": 1, "total": 2}}},
            "item": {"total": 1, "by_state": {"fulfilling": {**zero, "3-7d": 1, "total": 1}}},
            "problem": {"total": 1, "by_state": {"investigating": {**zero, ">7d": 1, "total": 1}}},
            "request": {"total": 1, "by_state": {"fulfilling": {**zero, "3-7d": 1, "total": 1}}},
        },
    }


def test_trend_counts_resolutions_on_their_day(report):
    assert report["trend"] == [
        {"day": "2026-03-02", "opened": 1, "resolved": 2}, {"day": "2026-03-03", "opened": 1, "resolved": 1},
        {"day": "2026-03-04", "opened": 1, "resolved": 0}, {"day": "2026-03-05", "opened": 1, "resolved": 0},
        {"day": "2026-03-06", "opened": 0, "resolved": 0}, {"day": "2026-03-07", "opened": 0, "resolved": 0},
        {"day": "2026-03-08", "opened": 1, "resolved": 0},
    ]


def test_excluded_and_window(report):
    assert report["excluded"] == {"incident": {"terminated": 1, "untracked": 1}}
    assert report["window"] == {"since": "2026-03-02T00:00:00Z", "until": "2026-03-09T00:00:00Z"}
    assert json.loads(json.dumps(report)) == report


def test_an_earlier_window_sees_only_its_own_runs():
    report = compute(WEEK, T0 - 3 * D, T0)
    assert report["incidents"]["all"]["opened"] == 1 and report["incidents"]["all"]["resolved"] == 1
    assert report["changes"]["total"] == 0 and report["changes"]["success_rate_percent"] is None
    zero = {"<1d": 0, "1-3d": 0, "3-7d": 0, ">7d": 0}
    assert report["backlog"]["by_process"] == {  # i6 was still open at T0; it has been resolved since
        "incident": {"total": 1, "by_state": {"finished_later": {**zero, "1-3d": 1, "total": 1}}},
        "problem": {"total": 1, "by_state": {"investigating": {**zero, ">7d": 1, "total": 1}}},
    }
    assert report["trend"] == [{"day": d, "opened": o, "resolved": 0}
                               for d, o in (("2026-02-27", 0), ("2026-02-28", 1), ("2026-03-01", 0))]


def test_continued_as_new_counts_from_the_first_start():
    first = Run(id="INC-X", process="incident", started=T0, status="continued_as_new", closed=T0 + D, state="new")
    second = Run(id="INC-X", process="incident", started=T0 + D, state="in_progress", priority="P1",
                 acked_at=T0 + D + H)
    assert merge([second, first]) == [Run(id="INC-X", process="incident", started=T0, state="in_progress",
                                          priority="P1", acked_at=T0 + D + H)]
    lone = merge([first])[0]  # its successor started after the listing's end: still open
    assert lone.running and lone.closed is None and open_at(lone, T0 + 2 * D)
    assert compute([first, second], T0, UNTIL)["incidents"]["all"]["mtta_seconds"] == (D + H).total_seconds()


def test_a_reopened_incident_is_open_again_whatever_its_last_resolution():
    reopened = incident("r", T0, "P2", acked=5 * M, resolved=H, state="in_progress")
    report = compute([reopened], T0, UNTIL)
    assert report["incidents"]["all"]["resolved"] == 0 and report["incidents"]["all"]["mttr_seconds"] is None
    assert report["incidents"]["all"]["resolution_sla"]["pending"] == 1
    assert report["backlog"]["by_process"]["incident"]["by_state"]["in_progress"][">7d"] == 1
    assert sum(day["resolved"] for day in report["trend"]) == 0


@pytest.mark.parametrize("case, until, expected", [
    (open_run("a", "change", T0, "implement"), T0, False),  # opened exactly at until: not yet
    (open_run("a", "change", T0, "implement"), T0 + M, True),
    (finished("a", "change", T0, "successful", H), T0 + H, False),  # outcome exactly at until
    (finished("a", "change", T0, "successful", H), T0 + 30 * M, True),
    (Run(id="a", process="change", started=T0, status="completed", closed=T0 + H, state="closed"), T0 + 2 * H, False),
    (Run(id="a", process="request", started=T0, state="fulfilled"), T0 + D, False),  # older run, final
    (Run(id="a", process="change", started=T0, status="terminated"), T0 + D, False),
])
def test_open_at(case, until, expected):
    assert open_at(case, until) is expected


def test_age_buckets_and_percentiles():
    assert [age_bucket(a) for a in (timedelta(0), D - M, D, 3 * D - M, 3 * D, 7 * D - M, 7 * D, 40 * D)] == [
        "<1d", "<1d", "1-3d", "1-3d", "3-7d", "3-7d", ">7d", ">7d"]
    assert percentile([], 50) is None
    assert percentile([H], 90) == 3600.0
    values = [n * M for n in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 100)) == (300.0, 540.0, 600.0)
    assert percentile([3 * M, M, 2 * M], 50) == 120.0


def test_default_window():
    now = datetime(2026, 3, 31, 12, tzinfo=timezone.utc)
    assert default_window(None, None, now) == (now - 30 * D, now)
    assert default_window(T0, None, now) == (T0, now)
    assert default_window(None, UNTIL, now) == (UNTIL - 30 * D, UNTIL)


def test_trend_includes_the_day_until_falls_in():
    days = compute([], T0 + 6 * H, T0 + D + H)["trend"]
    assert [d["day"] for d in days] == ["2026-03-02", "2026-03-03"]
    assert [d["day"] for d in compute([], T0, T0 + D)["trend"]] == ["2026-03-02"]


def test_csv_has_one_metric_per_row(report):
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0] == ["metric", "dimension", "value"]
    table = {(metric, dimension): value for metric, dimension, value in rows[1:]}
    assert len(table) == len(rows) - 1, "no (metric, dimension) twice"
    assert table[("incidents.mtta_seconds", "P1")] == "900.0"
    assert table[("incidents.mttr_seconds", "P2")] == ""
    assert table[("incidents.response_sla.compliance_percent", "all")] == "50.0"
    assert table[("changes.outcomes", "backed-out")] == "1"
    assert table[("changes.success_rate_percent", "")] == "60.0"
    assert table[("requests.fulfillment_seconds.p90", "")] == "36000.0"
    assert table[("backlog.open", "incident/new/3-7d")] == "1"
    assert table[("trend.resolved", "2026-03-02")] == "2"
    assert table[("excluded", "incident/untracked")] == "1"
    assert len(list(metric_rows(report))) == len(rows) - 1


def test_text_report(report):
    text = render_text(report)
    assert "P1              3      2        2  15m 00s   3h 30m" in text
    assert "success rate 60%" in text and "emergency share 25%" in text
    assert "fulfillment time p50 2h 00m, p90 10h 00m (4 fulfilled)" in text
    assert "Backlog at 2026-03-09T00:00:00Z: 8 open" in text
    assert "Excluded: incident terminated 1, incident untracked 1" in text
    assert [duration(v) for v in (None, 59.6, 3599, 3600, 90000)] == ["-", "1m 00s", "59m 59s", "1h 00m", "1d 01h"]


def test_html_escapes_names_and_marks_every_value(report):
    hostile = incident("x", T0 + H, "<script>alert(1)</script>", acked=M)
    page = render_html(compute([*WEEK, hostile], T0, UNTIL))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    page = render_html(report)
    assert not any(needle in page for needle in ("<script", "<link", "src=", "href=", "url(", "@import"))
    assert page.count("http") == page.count('xmlns="http://www.w3.org/2000/svg"') + 1  # + http-equiv
    for chart_id in ("chart-trend", "chart-sla", "chart-changes"):
        assert f'id="{chart_id}"' in page
    assert page.count('class="mark opened"') == page.count('class="mark resolved"') == 7
    assert page.count('class="mark response"') == 3 and page.count('class="mark resolution"') == 2
    assert sum(page.count(f'class="mark outcome-{o}"') for o in
               ("successful", "failed", "backed-out", "rejected", "canceled")) == 5
