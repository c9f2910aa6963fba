"""What `show` and `list` print, drawn from a status's JSON (its `model_dump(mode="json")`, which
is what a run's result, query answer and memo hold) with the standard library alone, for the
lean read path (cli/fast.py).

Each card draws exactly what its full-path formatter draws from the model (cli/change.py
format_change, cli/incident.py format_incident, cli/problem.py format_problem, cli/commands.py
timeline_card, itsmflow/app/generic.py show_text, cli/request.py and cli/runs.py):
tests/cli/test_lean_cards.py holds each pair to the same text, so a change to one that the
other lacks fails there."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

from itsmflow.app.formats import iso_utc, short_time
from itsmflow.app.shapes import TIMELINE_HEAD

Status = dict[str, Any]


def label_width(rows: list[tuple[str, str]]) -> int:
    """Labels line up, and a long one (`sla response`) never runs into its value."""
    return max([11, *(len(label) + 1 for label, _ in rows)])


def change_card(status: Status) -> str:
    lines = [f"{status['id']}  {status['title']}"]
    kind = status["type"] + (f" ({status['template']})" if status["template"] else "")
    risk = f", risk {status['risk']} ({status['risk_rule']})" if status["risk"] else ""
    moved = f" (moved from {short_time(status['original_start'])})" if status["original_start"] else ""
    rows = [
        ("state", status["state"] + (f": {status['reason']}" if status["reason"] else "")),
        ("type", kind + risk),
        ("requester", status["requested_by"]),
        ("cis", ", ".join(status["cis"])),
        ("planned", f"{short_time(status['planned_start'])} → {short_time(status['planned_end'])}{moved}"),
        ("policy", status["policy"]),
    ]
    if status["problem"]:
        rows.append(("problem", status["problem"]))
    if status["close_code"]:
        notes = f": {status['implementation_notes']}" if status["implementation_notes"] else ""
        rows.append(("close code", f"{status['close_code']} by {status['implemented_by']}{notes}"))
    width = label_width(rows)
    lines += [f"  {k:<{width}}{v}" for k, v in rows]
    for level in status["approvals"]:
        rule = level["rule"] + (f" {level['quorum']}" if level["quorum"] else "")
        lines.append(f"  approval {level['level']} {level['name']} ({level['group']}, {rule}): {level['status']}")
        for decision in level["decisions"]:
            comment = f' "{decision["comment"]}"' if decision["comment"] else ""
            lines.append(f"      {decision['user']} {decision['decision']} at {short_time(decision['time'])}{comment}")
    lines += [f"  conflict   {c}" for c in status["conflicts"]]
    lines += [f"  notice     {n}" for n in status["notices"]]
    return "\n".join(lines)


def incident_card(status: Status) -> str:
    escalation = status["escalation"]
    if escalation["active"] and escalation["next_at"]:
        position = f"{escalation['policy']}: step {escalation['step']} at {short_time(escalation['next_at'])}"
    else:
        position = f"{escalation['policy'] or 'none'}: stopped" if escalation["policy"] else "none"
    ack = (f", acknowledged by {status['acknowledged_by']} at {short_time(status['acknowledged_at'])}"
           if status["acknowledged_by"] else "")
    services = f" → services {', '.join(status['impacted_services'])}" if status["impacted_services"] else ""
    rows = [
        ("state", status["state"] + (" (MAJOR)" if status["major"] else "")),
        ("priority", f"{status['priority']} (impact {status['impact']}, urgency {status['urgency']})"),
        ("group", status["assigned_group"] + ack),
        ("ci", (status["ci"] or "-") + services),
        ("escalation", position),
    ]
    for clock in status["sla"].values():
        flags = [flag for flag, on in (("met", clock["met_at"]), ("paused", clock["paused"]),
                                       ("BREACHED", clock["breached"])) if on]
        rows.append((f"sla {clock['name']}", f"{clock['elapsed_percent']:.0f}% of {hours(clock['target'])} "
                                             f"({clock['calendar']}), due {short_time(clock['due'])}"
                                             + (f" [{', '.join(flags)}]" if flags else "")))
    if status["dedup_key"]:
        rows.append(("dedup", f"{status['dedup_key']}: {status['dedup_count']} event(s), "
                              f"last {short_time(status['last_seen'])}"))
        rows += [("  event", f"{short_time(e['seen_at'])} {e['title']}") for e in status["recent_events"]]
    if status["problem"]:
        rows.append(("problem", status["problem"]))
    rows += [("workaround", f"{k['workaround']} (known error {k['problem_id']}: {k['title']})")
             for k in status["known_errors"]]
    if status["resolution_code"]:
        notes = f": {status['resolution_notes']}" if status["resolution_notes"] else ""
        rows.append(("resolution", status["resolution_code"] + notes))
    return timeline_card(status, rows)


def problem_card(status: Status) -> str:
    changes = ", ".join(f"{c['id']} ({c['outcome'] or 'open'})" for c in status["changes"])
    rows = [
        ("state", status["state"] + (f": {status['reason']}" if status["reason"] else "")),
        ("ci", status["ci"]),
        ("opened by", status["opened_by"] + (" (suggested by recurring incidents)" if status["suggested"] else "")),
        ("incidents", ", ".join(status["incidents"]) or "-"),
        ("root cause", status["root_cause"] or "-"),
        ("workaround", status["workaround"] or "-"),
        ("changes", changes or "-"),
        ("policy", status["policy"]),
    ]
    if status["resolved_at"]:
        notes = f": {status['resolution_notes']}" if status["resolution_notes"] else ""
        rows.append(("resolved", short_time(status["resolved_at"]) + notes))
    return timeline_card(status, rows)


def timeline_card(status: Status, rows: list[tuple[str, str]]) -> str:
    """A card with the status's events timeline: title line, rows, timeline, notices."""
    width = label_width(rows)
    lines = [f"{status['id']}  {status['title']}", *(f"  {k:<{width}}{v}" for k, v in rows), "  timeline"]
    timeline = [f"    {short_time(e['time'])}  {e['actor']:<7} {e['action']:<15} {e['details']}"
                for e in status["events"]]
    omitted = status.get("events_omitted", 0)
    if omitted:
        at = TIMELINE_HEAD if len(status["events"]) > TIMELINE_HEAD else 0
        timeline.insert(at, f"    … {omitted} more event(s): itsm runs history {status['id']}")
    lines += timeline
    lines += [f"  notice     {n}" for n in status["notices"]]
    return "\n".join(lines)


def generic_card(data: Status) -> str:
    """A process without a `show` of its own: title, the plain fields, lists of names, timeline."""
    lines = [f"{data.get('id', '')}  {data.get('title', '')}".rstrip()]
    plain = {k: v for k, v in data.items() if k not in ("id", "title", "events", "notices")
             and isinstance(v, (str, int, float, bool)) and v not in ("", None)}
    width = max([11, *(len(k) + 2 for k in plain)])
    lines += [f"  {k:<{width}}{v}" for k, v in plain.items()]
    lines += [f"  {k:<{width}}{', '.join(map(str, v))}" for k, v in data.items()
              if isinstance(v, list) and v and all(isinstance(i, (str, int)) for i in v)]
    events = data.get("events") or []
    if events:
        lines.append("  timeline")
        lines += [f"    {e.get('time', '')}  {e.get('actor', ''):<7} {e.get('action', ''):<15} {e.get('details', '')}"
                  for e in events]
    lines += [f"  notice     {n}" for n in data.get("notices") or []]
    return "\n".join(lines)


CARDS: dict[str, Callable[[Status], str]] = {"change": change_card, "incident": incident_card,
                                              "problem": problem_card, "generic": generic_card}


def request_lines(request: Status, items: list[Status | None], ui: str, as_of: str | None,
                  stale: str | None) -> list[str]:
    """`itsm request show`: the request, each item (its own status, or its entry while it has
    none), approvals and tasks, the UI link and as of when it may be stale."""
    lines = [f"{request['id']}  {request['title']} for {request['requested_for']}: {request['state']}"]
    for ref, item in zip(request["items"], items):
        if item is None:
            lines.append(f"  {ref['id']} {ref['item']}: {ref['state']} {ref['reason']}")
            continue
        sla = item["sla"]
        due = f", SLA {sla['elapsed_percent']:.0f}% due {short_time(sla['due'])}" if sla else ""
        lines.append(f"  {item['id']} {item['item']}: {item['state']}{due}"
                     + (f" ({item['reason']})" if item["reason"] else ""))
        for level in item["approvals"]:
            who = ", ".join(f"{d['user']} {d['decision']}" for d in level["decisions"]) or "waiting"
            lines.append(f"    approval {level['group']}: {level['status']} ({who})")
        for task in item["tasks"]:
            extra = " ".join(x for x in (task["task_id"] or "", task["group"] or "",
                                         f"by {task['by']}" if task["by"] else "",
                                         "(fallback)" if task["fallback"] else "") if x)
            lines.append(f"    task {task['name']}: {task['state']} {extra}")
    lines.append(f"  ui  {ui}")
    if stale:
        lines.append(f"  as of  {short_time(as_of)}, may be stale: {stale}")
    return lines


def read_lines(text: str, ui: str, as_of: str | None, stale: str | None) -> list[str]:
    """A `show` for people: its card, its UI link, and as of when it may be stale."""
    lines = [text, f"  {'ui':<11}{ui}"]
    if stale:
        lines.append(f"  {'as of':<11}{short_time(as_of)}, may be stale: {stale}")
    return lines


def runs_table(rows: list[Status], column: str | None) -> list[str]:
    """`list`: one line a run, and the column its process's runs are told apart by."""
    head = f"{column.upper():<9} " if column else ""
    lines = [f"{'ID':<19} {'PROCESS':<9} {'STATE':<11} {head}{'STARTED':<21} TITLE"]
    for row in rows:
        cell = f"{row[column] or '-':<9} " if column else ""
        lines.append(f"{row['id']:<19} {row['process'] or '-':<9} {row['state'] or '-':<11} {cell}"
                     f"{short_time(row['started']):<21} {row['title']}")
    return lines


def utc(value: Any) -> Any:
    """JSON data with every ISO time in UTC, as `--json` prints it (cli/common.py to_json_model)."""
    if isinstance(value, dict):
        return {k: utc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [utc(v) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        try:
            return iso_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    return value


_UNIT_SECONDS = {"h": 3600, "m": 60}
_ISO_DURATION = re.compile(r"(-)?P(?:(\d+)Y)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?)?")


def hours(duration: str) -> str:
    """An SLA target (pydantic's ISO 8601 duration) spelled as definitions.base.format_hours
    spells the timedelta: `8h`, `30m`, `1.5s`."""
    match = _ISO_DURATION.fullmatch(duration)
    if match is None or duration in ("P", "-P") or duration.endswith("T"):
        raise ValueError(f"not a duration: {duration!r}")
    sign, years, days, hour, minute, second, fraction = match.groups()
    whole = ((int(years or 0) * 365 + int(days or 0)) * 86400 + int(hour or 0) * 3600 + int(minute or 0) * 60
             + int(second or 0))
    micro = int((fraction or "").ljust(6, "0"))
    if sign:
        whole, micro = -whole - (1 if micro else 0), (1_000_000 - micro) % 1_000_000
    if micro:  # format_duration: the exact seconds, fraction kept
        return f"{(whole * 1_000_000 + micro) / 1_000_000:.6f}".rstrip("0") + "s"
    for unit in "hm":
        if whole and whole % _UNIT_SECONDS[unit] == 0:
            return f"{whole // _UNIT_SECONDS[unit]}{unit}"
    return f"{whole}s"
