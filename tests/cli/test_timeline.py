"""`itsm runs timeline`: the rendering as pure functions over hand-made audit rows (exact
text, gantt and JSON), then one change driven through approve and complete on the
time-skipping server, read back through the real history and the real command."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from itsmflow.app.audit import audit_trail
from itsmflow.app.timeline import entries_json, parents_of, render_gantt, render_text, span, timeline_entries
from tests.cli.test_cli_offline import itsm
from tests.workflows.helpers import (
    changes,  # noqa: F401  (the fixture: ends every run it starts)
    complete,
    implementing,
    itsm_cli,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
CHG = "CHG-20260105-AB12"


def row(offset: timedelta, actor: str, action: str, details: str = "", run: str = CHG) -> dict:
    return {"time": T0 + offset, "actor": actor, "action": action, "details": details, "policy": "acme-demo@1",
            "run": run}


def s(seconds: float = 0, minutes: float = 0, hours: float = 0) -> timedelta:
    return timedelta(seconds=seconds, minutes=minutes, hours=hours)


CHANGE_ROWS = [
    row(s(0), "alice", "submitted", "Patch web-02, normal, web-02, policy acme-demo@1"),
    row(s(0), "system", "state", "new"),
    row(s(1), "system", "notify", "notify alice: change submitted"),
    row(s(1), "system", "state", "assess"),
    row(s(2), "system", "find_conflicts", "check the change calendar for conflicts"),
    row(s(2), "system", "state", "authorize"),
    row(s(2, 15, 2), "bob", "approve", "comment: routine"),
    row(s(3, 15, 2), "system", "state", "scheduled"),
    row(s(hours=3), "system", "timer fired", "until planned start 2026-01-05 12:00 UTC"),
    row(s(hours=3), "system", "state", "implement"),
    row(s(minutes=30, hours=3), "erin", "complete", "outcome: successful; notes: done"),
    row(s(minutes=30, hours=3), "system", "state", "review"),
    row(s(1, 30, 3), "system", "state", "closed"),
    row(s(1, 30, 3), "system", "completed"),
]


@pytest.mark.parametrize("delta, text", [
    (s(0), "0s"), (s(45), "45s"), (s(20, 3), "3m20s"), (s(30, 15, 2), "2h15m"), (s(hours=2), "2h"),
    (s(5, 0, 2), "2h"), (s(hours=28), "1d4h"), (s(0.9), "0s"), (s(-5), "0s"),
])
def test_span(delta, text):
    assert span(delta) == text


def test_change_timeline_text():
    assert render_text(timeline_entries(CHANGE_ROWS)) == "\n".join([
        "CHG-20260105-AB12  change  started 2026-01-05 09:00:00Z",
        "       +0s  * alice    submitted          Patch web-02, normal, web-02, policy acme-demo@1",
        "  ── new ──  +0s",
        "       +1s    system   notify             notify alice: change submitted",
        "  ── assess ──  +1s",
        "       +2s    system   find_conflicts     check the change calendar for conflicts",
        "  ── authorize ──  +2s",
        "              … 2h15m waiting …",
        "    +2h15m  * bob      approve            comment: routine",
        "  ── scheduled ──  +2h15m",
        "              … 44m57s waiting …",
        "       +3h    system   timer fired        until planned start 2026-01-05 12:00 UTC",
        "  ── implement ──  +3h",
        "              … 30m waiting …",
        "    +3h30m  * erin     complete           outcome: successful; notes: done",
        "  ── review ──  +3h30m",
        "  ── closed ──  +3h30m",
        "    +3h30m    system   completed",
    ]) + "\n"


def test_gap_threshold_is_a_parameter():
    quiet = render_text(timeline_entries(CHANGE_ROWS, gap=timedelta(hours=1)))
    assert [line.strip() for line in quiet.splitlines() if "waiting" in line] == ["… 2h15m waiting …"]


def test_change_gantt_one_bar_per_state_and_milestones_for_people():
    assert render_gantt(timeline_entries(CHANGE_ROWS)) == "\n".join([
        "gantt",
        f"    title {CHG}",
        "    dateFormat YYYY-MM-DDTHH:mm:ss",
        "    axisFormat %m-%d %H:%M",
        "    todayMarker off",
        f"    section {CHG} change",
        "        new :2026-01-05T09:00:00, 2026-01-05T09:00:01",
        "        assess :2026-01-05T09:00:01, 2026-01-05T09:00:02",
        "        authorize :2026-01-05T09:00:02, 2026-01-05T11:15:03",
        "        scheduled :2026-01-05T11:15:03, 2026-01-05T12:00:00",
        "        implement :2026-01-05T12:00:00, 2026-01-05T12:30:00",
        "        review :2026-01-05T12:30:00, 2026-01-05T12:30:01",
        "        closed :2026-01-05T12:30:01, 2026-01-05T12:30:01",
        "        submitted by alice :milestone, 2026-01-05T09:00:00, 0d",
        "        approve by bob :milestone, 2026-01-05T11:15:02, 0d",
        "        complete by erin :milestone, 2026-01-05T12:30:00, 0d",
    ]) + "\n"


def test_gantt_names_lose_the_characters_the_grammar_reserves():
    rows = [row(s(0), "system", "state", "wait: #1; now"), row(s(5), "o'neil#2", "approve: yes; ok %% x"),
            row(s(9), "system", "completed")]
    lines = render_gantt(timeline_entries(rows), title="a: b # c").splitlines()
    assert lines[1] == "    title a b c"
    assert lines[6:] == ["        wait 1 now :2026-01-05T09:00:00, 2026-01-05T09:00:09",
                         "        approve yes ok x by o'neil 2 :milestone, 2026-01-05T09:00:05, 0d"]
    for line in lines[6:]:
        name, data = line.split(" :", 1)
        assert not re.search(r"[:;#]", name)


REQ, RITM, TASK, ORPHAN = "REQ-20260105-RQ01", "RITM-20260105-IT01", "TASK-20260105-TK01", "RITM-20260105-IT02"
REQUEST_ROWS = [
    row(s(0), "alice", "submitted", "Laptop, policy acme-catalog@1", REQ),
    row(s(1), "alice", "submitted", "policy acme-catalog@1", RITM),
    row(s(1), "system", "state", "fulfilling", RITM),
    row(s(2), "system", "state", "fulfilling", REQ),
    row(s(3), "system", "submitted", "Prepare and hand over the laptop", TASK),
    row(s(hours=4), "erin", "complete", "notes: handed over", TASK),
    row(s(hours=4), "system", "state", "done", TASK),
    row(s(1, 0, 4), "system", "state", "fulfilled", RITM),
    row(s(2, 0, 4), "system", "completed", "", RITM),
    row(s(2, 0, 4), "system", "state", "fulfilled", REQ),
    row(s(3, 0, 4), "system", "completed", "", REQ),
    row(s(5), "system", "submitted", "stray", ORPHAN),
]


def test_children_nest_under_their_run():
    entries = timeline_entries(REQUEST_ROWS, REQ, {RITM: REQ, TASK: RITM})
    assert render_text(entries) == "\n".join([
        "REQ-20260105-RQ01  request  started 2026-01-05 09:00:00Z",
        "       +0s  * alice    submitted          Laptop, policy acme-catalog@1",
        "    RITM-20260105-IT01  item  started +1s",
        "           +1s  * alice    submitted          policy acme-catalog@1",
        "      ── fulfilling ──  +1s",
        "        TASK-20260105-TK01  task  started +3s",
        "               +3s    system   submitted          Prepare and hand over the laptop",
        "                      … 3h59m waiting …",
        "               +4h  * erin     complete           notes: handed over",
        "          ── done ──  +4h",
        "                  … 4h waiting …",
        "      ── fulfilled ──  +4h",
        "           +4h    system   completed",
        "  ── fulfilling ──  +2s",
        "    RITM-20260105-IT02  item  started +5s",
        "           +5s    system   submitted          stray",
        "              … 4h waiting …",
        "  ── fulfilled ──  +4h",
        "       +4h    system   completed",
    ]) + "\n"
    assert [line.split()[1] for line in render_gantt(entries).splitlines() if line.startswith("    section")] == [
        REQ, RITM, TASK]


def test_json_entries():
    entries = entries_json(timeline_entries(CHANGE_ROWS[:8]))
    assert entries[:3] == [
        {"kind": "run", "run": CHG, "depth": 0, "time": "2026-01-05T09:00:00Z", "elapsed": "+0s",
         "elapsed_seconds": 0, "process": "change"},
        {"kind": "action", "run": CHG, "depth": 0, "time": "2026-01-05T09:00:00Z", "elapsed": "+0s",
         "elapsed_seconds": 0, "actor": "alice", "action": "submitted",
         "details": "Patch web-02, normal, web-02, policy acme-demo@1", "human": True},
        {"kind": "state", "run": CHG, "depth": 0, "time": "2026-01-05T09:00:00Z", "elapsed": "+0s",
         "elapsed_seconds": 0, "state": "new"},
    ]
    gap = next(e for e in entries if e["kind"] == "gap")
    assert (gap["time"], gap["waited"], gap["elapsed_seconds"]) == ("2026-01-05T11:15:02Z", "2h15m", 8102)


def test_no_rows_no_timeline():
    assert timeline_entries([]) == [] and render_text([]) == ""


def test_mermaid_and_json_together_is_a_usage_error():
    result = itsm("runs", "timeline", CHG, "--mermaid", "--json")
    assert (result.returncode, result.stderr) == (2, "itsm: choose one of --mermaid and --json\n")


async def test_timeline_of_a_real_change(env, changes):
    status = await implementing(env, changes, approver="carol", requested_by="bob")
    await complete(env, status.id, "erin")
    rows = await audit_trail(env.client, status.id)
    assert await parents_of(env.client, rows, status.id) == {}
    entries = timeline_entries(rows, status.id)
    text = render_text(entries)
    states = ["new", "assess", "authorize", "scheduled", "implement", "review", "closed"]
    assert re.findall(r"^  ── (\S+) ──", text, re.M) == states
    scheduled = text.split("── scheduled ──")[1].split("── implement ──")[0]
    assert re.search(r"… 59m5\ds waiting …", scheduled) and "timer fired" in scheduled
    human = [line.split()[2] for line in text.splitlines() if "  * " in line]
    assert human == ["bob", "carol", "erin"]

    gantt = render_gantt(entries)
    bars = [line.strip().split(" :")[0] for line in gantt.splitlines()
            if line.startswith("        ") and ":milestone" not in line]
    assert bars == states
    assert [line.strip().split(" :")[0] for line in gantt.splitlines() if ":milestone" in line] == [
        "submitted by bob", "approve by carol", "complete by erin"]

    shown = await itsm_cli(env, "runs", "timeline", status.id)
    assert (shown.returncode, shown.stdout) == (0, text), shown.stderr
    assert (await itsm_cli(env, "runs", "timeline", status.id, "--mermaid")).stdout == gantt
    missing = await itsm_cli(env, "runs", "timeline", "CHG-20200101-ZZZZ")
    assert (missing.returncode, missing.stderr) == (2, "itsm: no such id 'CHG-20200101-ZZZZ'\n")
