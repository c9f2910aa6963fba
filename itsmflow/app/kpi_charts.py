"""Chart geometry for the HTML KPI report: plain data (marks with a class, a value and a
tooltip) that the template turns into inline SVG. No JavaScript and nothing fetched, so
the report renders the same offline, in a mail client or an archive.

Every value mark is at least 1 px tall, so a zero shows as a baseline tick rather than
vanishing."""

from __future__ import annotations

from dataclasses import dataclass, field

from itsmflow.app.kpis import CHANGE_OUTCOMES

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 44
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BASE = TOP + PLOT_H


@dataclass
class Mark:
    kind: str  # rect | circle
    css: str
    tip: str
    x: float
    y: float
    w: float = 0.0
    h: float = 0.0


@dataclass
class Chart:
    id: str
    title: str
    marks: list[Mark] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (css class, polyline points)
    labels: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, anchor, text
    grid: list[tuple[float, str]] = field(default_factory=list)  # y, label
    legend: list[tuple[str, str]] = field(default_factory=list)  # css class, text
    width: int = WIDTH
    height: int = HEIGHT


def _y(value: float, top: float) -> float:
    return BASE - (value / top * PLOT_H if top else 0)


def _grid(top: int, unit: str = "") -> list[tuple[float, str]]:
    """Whole-number gridlines: 0, the middle (rounded down) and the top."""
    return [(round(_y(v, top), 1), f"{v}{unit}") for v in sorted({0, top // 2, top})]


def _bar(css: str, tip: str, x: float, width: float, value: float, top: float) -> Mark:
    height = max(value / top * PLOT_H if top else 0, 1.0)
    return Mark("rect", css, tip, round(x, 1), round(BASE - height, 1), round(width, 1), round(height, 1))


def trend_chart(trend: list[dict]) -> Chart:
    """Incidents opened and resolved per day: a line per series, a point per day."""
    chart = Chart("chart-trend", "Incidents opened and resolved per day",
                  legend=[("opened", "opened"), ("resolved", "resolved")])
    top = max([1, *(max(d["opened"], d["resolved"]) for d in trend)])
    chart.grid = _grid(top)
    step = PLOT_W / max(len(trend) - 1, 1)
    xs = [LEFT + (i * step if len(trend) > 1 else PLOT_W / 2) for i in range(len(trend))]
    for series in ("opened", "resolved"):
        points = [(round(x, 1), round(_y(day[series], top), 1)) for x, day in zip(xs, trend)]
        chart.lines.append((series, " ".join(f"{x},{y}" for x, y in points)))
        chart.marks += [Mark("circle", series, f"{day['day']}: {day[series]} {series}", x, y, 3.5, 3.5)
                        for (x, y), day in zip(points, trend)]
    every = max(1, len(trend) // 6)
    chart.labels = [(round(x, 1), BASE + 16, "middle", day["day"][5:])
                    for i, (x, day) in enumerate(zip(xs, trend)) if i % every == 0 or i == len(trend) - 1]
    return chart


def sla_chart(incidents: dict) -> Chart:
    """Response and resolution SLA compliance (%) per priority; no bar where nothing is decided."""
    chart = Chart("chart-sla", "SLA compliance by priority",
                  legend=[("response", "response"), ("resolution", "resolution")])
    chart.grid = _grid(100, "%")
    groups = {**incidents["by_priority"], "all": incidents["all"]}
    slot = PLOT_W / len(groups)
    bar = min(28.0, slot / 3)
    for index, (priority, figures) in enumerate(groups.items()):
        left = LEFT + index * slot + (slot - 2 * bar) / 2
        for offset, clock in enumerate(("response", "resolution")):
            sla = figures[f"{clock}_sla"]
            value = sla["compliance_percent"]
            if value is None:
                chart.labels.append((round(left + (offset + 0.5) * bar, 1), BASE - 4, "middle", "n/a"))
                continue
            tip = f"{priority} {clock}: {value:g}% ({sla['met']} met, {sla['breached']} breached)"
            mark = _bar(clock, tip, left + offset * bar, bar - 2, value, 100)
            chart.marks.append(mark)
            chart.labels.append((round(mark.x + mark.w / 2, 1), mark.y - 4, "middle", f"{value:.0f}%"))
        chart.labels.append((round(left + bar, 1), BASE + 16, "middle", priority))
    return chart


def outcome_chart(changes: dict) -> Chart:
    """Closed changes by outcome, and those that never ran (rejected, canceled)."""
    chart = Chart("chart-changes", "Change outcomes")
    outcomes = {name: changes["outcomes"].get(name, 0) for name in CHANGE_OUTCOMES}
    top = max([1, *outcomes.values()])
    chart.grid = _grid(top)
    slot = PLOT_W / len(outcomes)
    for index, (name, count) in enumerate(outcomes.items()):
        mark = _bar(f"outcome-{name}", f"{name}: {count}", LEFT + index * slot + slot * 0.2, slot * 0.6, count, top)
        chart.marks.append(mark)
        chart.labels += [(round(mark.x + mark.w / 2, 1), mark.y - 4, "middle", str(count)),
                         (round(mark.x + mark.w / 2, 1), BASE + 16, "middle", name)]
    return chart


def charts(report: dict) -> list[Chart]:
    return [trend_chart(report["trend"]), sla_chart(report["incidents"]), outcome_chart(report["changes"])]
