"""The KPI report as text (for people) and CSV (one metric per row: metric, dimension,
value, for spreadsheets). The JSON form is the report dict itself."""

from __future__ import annotations

import csv
import io
from typing import Iterator

from itsmflow.app.kpis import AGE_BUCKETS

# Sub-dicts whose keys are parts of the metric's name, not dimensions (priorities, types...).
METRIC_PARTS = {"response_sla", "resolution_sla", "fulfillment_seconds", "item_fulfillment_sla"}


def duration(value: float | None) -> str:
    if value is None:
        return "-"
    total = round(value)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def _sla(figures: dict) -> str:
    decided = figures["met"] + figures["breached"]
    pending = f", {figures['pending']} pending" if figures["pending"] else ""
    return f"{share(figures['compliance_percent'])} ({figures['met']}/{decided}{pending})"


def _counts(counts: dict) -> str:
    return "  ".join(f"{name} {count}" for name, count in counts.items())


def render_text(report: dict) -> str:
    window = report["window"]
    lines = [f"KPIs for runs opened {window['since']} .. {window['until']}", ""]
    incidents = report["incidents"]
    lines.append(f"{'Incidents':<10} {'opened':>6} {'acked':>6} {'resolved':>8}  {'MTTA':<9} {'MTTR':<9} "
                 f"{'response SLA':<24} resolution SLA")
    for name, figures in {**incidents["by_priority"], "all": incidents["all"]}.items():
        lines.append(f"{name:<10} {figures['opened']:>6} {figures['acknowledged']:>6} {figures['resolved']:>8}  "
                     f"{duration(figures['mtta_seconds']):<9} {duration(figures['mttr_seconds']):<9} "
                     f"{_sla(figures['response_sla']):<24} {_sla(figures['resolution_sla'])}")
    changes = report["changes"]
    lines += ["", f"Changes    {changes['total']} ({_counts(changes['by_type'])}); "
                  f"emergency share {share(changes['emergency_share_percent'])}",
              f"           {_counts(changes['outcomes'])}  open {changes['open']}; "
              f"success rate {share(changes['success_rate_percent'])}"]
    releases = report.get("releases")
    if releases and releases["total"]:
        per = releases["changes_per_release"]
        lines += ["", f"Releases   {releases['total']} ({_counts(releases['outcomes']) or 'none ended'}); "
                      f"{releases['successful']} of {releases['went']} that went successful; "
                      f"{per if per is not None else '-'} changes per release"]
    requests = report["requests"]
    times = requests["fulfillment_seconds"]
    lines += ["", f"Requests   {requests['total']}: {_counts(requests['outcomes'])}  open {requests['open']}",
              f"           fulfillment time p50 {duration(times['p50'])}, p90 {duration(times['p90'])} "
              f"({times['count']} fulfilled); item fulfillment SLA {_sla(requests['item_fulfillment_sla'])}"]
    lines += ["", *_backlog_lines(report["backlog"]), "", "Incidents per day (opened / resolved)"]
    active = [day for day in report["trend"] if day["opened"] or day["resolved"]]
    lines += [f"  {day['day']}  {day['opened']:>3} / {day['resolved']}" for day in active] or ["  none"]
    lines += ["", f"{'Process':<14} {'opened':>6} {'open':>5}  outcomes"]
    lines += [f"{name:<14} {figures['opened']:>6} {figures['open']:>5}  {_counts(figures['outcomes']) or '-'}"
              for name, figures in report.get("processes", {}).items()] or ["  none"]
    lines += ["", f"Excluded: {excluded_summary(report) or 'none'}"]
    return "\n".join(lines) + "\n"


def excluded_summary(report: dict) -> str:
    return ", ".join(f"{process} {reason} {count}" for process, reasons in report["excluded"].items()
                     for reason, count in reasons.items())


def _backlog_lines(backlog: dict) -> list[str]:
    buckets = [name for name, _ in AGE_BUCKETS]
    lines = [f"Backlog at {backlog['as_of']}: {backlog['total']} open",
             f"  {'process':<10} {'state':<15}" + "".join(f"{b:>6}" for b in buckets) + f"{'total':>7}"]
    for process, figures in backlog["by_process"].items():
        for state, ages in figures["by_state"].items():
            lines.append(f"  {process:<10} {state:<15}" + "".join(f"{ages[b]:>6}" for b in buckets)
                         + f"{ages['total']:>7}")
    return lines


def metric_rows(report: dict) -> Iterator[tuple[str, str, object]]:
    """(metric, dimension, value): priorities, types, outcomes, days, process/state/age and
    process/reason are dimensions; everything else is part of the metric's name."""
    yield "window.since", "", report["window"]["since"]
    yield "window.until", "", report["window"]["until"]
    incidents = report["incidents"]
    for dimension, figures in {"all": incidents["all"], **incidents["by_priority"]}.items():
        yield from _section("incidents", figures, dimension)
    yield from _section("changes", report["changes"])
    yield from _section("requests", report["requests"])
    backlog = report["backlog"]
    yield "backlog.total", "", backlog["total"]
    for process, figures in backlog["by_process"].items():
        yield "backlog.open", process, figures["total"]
        for state, ages in figures["by_state"].items():
            for age, count in ages.items():
                yield "backlog.open", f"{process}/{state}/{age}", count
    for day in report["trend"]:
        yield "trend.opened", day["day"], day["opened"]
        yield "trend.resolved", day["day"], day["resolved"]
    for process, figures in report.get("processes", {}).items():
        yield "processes.opened", process, figures["opened"]
        yield "processes.open", process, figures["open"]
        for outcome, count in figures["outcomes"].items():
            yield "processes.outcome", f"{process}/{outcome}", count
    for process, reasons in report["excluded"].items():
        for reason, count in reasons.items():
            yield "excluded", f"{process}/{reason}", count


def _section(prefix: str, figures: dict, dimension: str = "") -> Iterator[tuple[str, str, object]]:
    for key, value in figures.items():
        if not isinstance(value, dict):
            yield f"{prefix}.{key}", dimension, value
        elif key in METRIC_PARTS:
            yield from ((f"{prefix}.{key}.{part}", dimension, v) for part, v in value.items())
        else:
            yield from ((f"{prefix}.{key}", name, v) for name, v in value.items())


def render_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "dimension", "value"])
    writer.writerows((metric, dimension, "" if value is None else value)
                     for metric, dimension, value in metric_rows(report))
    return out.getvalue()
