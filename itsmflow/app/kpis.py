"""Service-management KPIs as pure functions over visibility rows (one `Run` per listed
execution), so a report needs no history reads and no worker, and open runs count.

Window semantics: the *cohort* is every run opened in [since, until), with its outcome as
known now (a past window's figures settle as its open runs finish). The backlog is what
was open at `until`; the trend counts incidents opened and resolved per UTC day of the
window. Runs that failed, were terminated, canceled or timed out (Temporal statuses, not
business outcomes) and finished runs without KPI attributes (started before they existed)
are left out of every figure and counted under `excluded`."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

PRIORITIES = ("P1", "P2", "P3", "P4")
CHANGE_TYPES = ("normal", "standard", "emergency")
CHANGE_SUCCESS = ("successful", "failed", "backed-out")
CHANGE_OUTCOMES = (*CHANGE_SUCCESS, "rejected", "canceled")
REQUEST_OUTCOMES = ("fulfilled", "failed", "rejected", "canceled")
FINAL_STATES = frozenset({"resolved", "closed", "fulfilled", "rejected", "canceled", "failed", "done"})
OPEN_STATUSES = frozenset({"running", "continued_as_new"})
EXCLUDED_STATUSES = frozenset({"failed", "terminated", "canceled", "timed_out"})
TRACKED_PROCESSES = ("incident", "change", "request")
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("<1d", timedelta(days=1)), ("1-3d", timedelta(days=3)), ("3-7d", timedelta(days=7)), (">7d", None))
FINISHED_LATER = "finished_later"
DEFAULT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Run:
    """What visibility says about one execution; `status` is Temporal's, lower case. After
    merge(), one per business id, `started` is when the process opened (its first run's start)."""

    id: str
    process: str
    started: datetime
    status: str = "running"
    closed: datetime | None = None
    state: str | None = None
    priority: str | None = None
    type: str | None = None
    outcome: str | None = None
    acked_at: datetime | None = None
    resolved_at: datetime | None = None
    breaches: tuple[str, ...] = ()
    parent: str | None = None  # the run it belongs to: a release's changes name it

    @property
    def running(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def untracked(self) -> bool:
        """Finished without the KPI milestone: a run started before the attributes existed."""
        return self.process in TRACKED_PROCESSES and self.state in FINAL_STATES and self.resolved_at is None


def merge(runs: Iterable[Run]) -> list[Run]:
    """One case per business id: a run that continued as new is superseded by its successor
    (when listed), and the case counts from the earliest start seen."""
    by_id: dict[str, list[Run]] = {}
    for run in runs:
        by_id.setdefault(run.id, []).append(run)
    cases = []
    for rows in by_id.values():
        live = [r for r in rows if r.status != "continued_as_new"] or rows
        latest = max(live, key=lambda r: r.started)
        earliest = min(r.started for r in rows)
        closed = None if latest.status == "continued_as_new" else latest.closed
        cases.append(current(replace(latest, started=earliest, closed=closed)))
    return sorted(cases, key=lambda c: (c.started, c.id))


def current(run: Run) -> Run:
    """A reopened incident keeps its last resolution in visibility (KPI attributes are only
    ever set); while it is open again it has none."""
    if run.process == "incident" and run.state not in FINAL_STATES and run.resolved_at is not None:
        return replace(run, resolved_at=None, outcome=None)
    return run


def default_window(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """`until` defaults to now, `since` to 30 days before `until`."""
    until = until or now
    return since or until - DEFAULT_WINDOW, until


# --- figures ---------------------------------------------------------------------------------


def seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


def mean_seconds(deltas: list[timedelta]) -> float | None:
    return seconds(sum(deltas, timedelta(0)) / len(deltas)) if deltas else None


def percentile(deltas: list[timedelta], percent: float) -> float | None:
    """Nearest rank: the smallest observed value with at least `percent` % of values at or
    below it (always a real duration, never an interpolation)."""
    if not deltas:
        return None
    ordered = sorted(deltas)
    return seconds(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)])


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def clock_state(case: Run, clock: str, reached: bool) -> str | None:
    """met: the milestone happened and the clock never breached; breached: in ItsmBreaches
    (open runs too); pending: still running, neither yet; None: finished without either."""
    if clock in case.breaches:
        return "breached"
    if reached:
        return "met"
    return "pending" if case.running else None


def sla_figures(cases: list[Run], clock: str, reached: Callable[[Run], bool]) -> dict:
    counts = Counter(state for case in cases if (state := clock_state(case, clock, reached(case))))
    met, breached = counts["met"], counts["breached"]
    return {"met": met, "breached": breached, "pending": counts["pending"],
            "compliance_percent": percent(met, met + breached)}


def incident_figures(cases: list[Run]) -> dict:
    acked = [c.acked_at - c.started for c in cases if c.acked_at]
    resolved = [c.resolved_at - c.started for c in cases if c.resolved_at]
    return {
        "opened": len(cases), "acknowledged": len(acked), "resolved": len(resolved),
        "mtta_seconds": mean_seconds(acked), "mttr_seconds": mean_seconds(resolved),
        "response_sla": sla_figures(cases, "response", lambda c: c.acked_at is not None),
        "resolution_sla": sla_figures(cases, "resolution", lambda c: c.resolved_at is not None),
    }


def _ordered(known: tuple[str, ...], seen: Iterable[str | None]) -> list[str]:
    """The known names in their order, then any others seen (custom policies), sorted."""
    return [*known, *sorted({s for s in seen if s} - set(known))]


def incident_kpis(incidents: list[Run]) -> dict:
    priorities = _ordered(PRIORITIES, (c.priority for c in incidents))
    return {
        "all": incident_figures(incidents),
        "by_priority": {p: incident_figures([c for c in incidents if c.priority == p]) for p in priorities},
    }


def change_kpis(changes: list[Run]) -> dict:
    outcomes = Counter(c.outcome for c in changes if c.outcome)
    types = Counter(c.type or "unknown" for c in changes)
    decided = sum(outcomes[o] for o in CHANGE_SUCCESS)
    return {
        "total": len(changes), "open": sum(1 for c in changes if not c.outcome),
        "by_type": {t: types[t] for t in _ordered(CHANGE_TYPES, types)},
        "outcomes": {o: outcomes[o] for o in _ordered(CHANGE_OUTCOMES, outcomes)},
        "success_rate_percent": percent(outcomes["successful"], decided),
        "emergency_share_percent": percent(types["emergency"], len(changes)),
    }


def request_kpis(requests: list[Run], items: list[Run]) -> dict:
    outcomes = Counter(c.outcome for c in requests if c.outcome)
    times = [c.resolved_at - c.started for c in requests if c.outcome == "fulfilled" and c.resolved_at]
    return {
        "total": len(requests), "open": sum(1 for c in requests if not c.outcome),
        "outcomes": {o: outcomes[o] for o in _ordered(REQUEST_OUTCOMES, outcomes)},
        "fulfillment_seconds": {"count": len(times), "p50": percentile(times, 50), "p90": percentile(times, 90),
                                "mean": mean_seconds(times)},
        "item_fulfillment_sla": sla_figures(items, "fulfillment", lambda c: c.outcome == "fulfilled"),
    }


# --- backlog and trend -----------------------------------------------------------------------


def open_at(case: Run, until: datetime) -> bool:
    """Opened before `until` and not at its outcome by then. A run finished without a
    recorded milestone (older runs) counts as finished."""
    if case.started >= until or case.status in EXCLUDED_STATUSES:
        return False
    if case.resolved_at is not None:
        return case.resolved_at > until
    if case.closed is not None and case.closed <= until:
        return False
    return case.state not in FINAL_STATES


def age_bucket(age: timedelta) -> str:
    return next(name for name, limit in AGE_BUCKETS if limit is None or age < limit)


def backlog(cases: list[Run], until: datetime) -> dict:
    """Open runs at `until` by process, state and age. Runs that have finished since are
    listed as `finished_later`: visibility keeps only a run's current state."""
    by_process: dict[str, dict] = {}
    for case in (c for c in cases if open_at(c, until)):
        state = case.state if case.state not in FINAL_STATES else FINISHED_LATER
        process = by_process.setdefault(case.process, {"total": 0, "by_state": {}})
        ages = process["by_state"].setdefault(state or "unknown", {name: 0 for name, _ in AGE_BUCKETS} | {"total": 0})
        ages[age_bucket(until - case.started)] += 1
        ages["total"] += 1
        process["total"] += 1
    ordered = {p: {"total": v["total"], "by_state": dict(sorted(v["by_state"].items()))}
               for p, v in sorted(by_process.items())}
    return {"total": sum(v["total"] for v in ordered.values()), "by_process": ordered}


def utc_day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).date().isoformat()


def trend(incidents: list[Run], since: datetime, until: datetime) -> list[dict]:
    """Incidents opened and resolved per UTC day of [since, until); resolutions count on
    their day whenever the incident opened."""
    first = since.astimezone(timezone.utc).date()
    last = (until - timedelta(microseconds=1)).astimezone(timezone.utc).date()

    def per_day(moments: Iterable[datetime | None]) -> Counter[str]:
        return Counter(utc_day(moment) for moment in moments if moment is not None and since <= moment < until)

    opened = per_day(c.started for c in incidents)
    resolved = per_day(c.resolved_at for c in incidents)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return [{"day": day, "opened": opened[day], "resolved": resolved[day]} for day in days]


def release_kpis(releases: list[Run], changes: list[Run]) -> dict:
    """Success rate over the releases that went (a no-go is not a failure), and how many
    changes a release bundles (its changes are those naming it, ItsmParent)."""
    outcomes = Counter(r.outcome for r in releases if r.outcome)
    went = outcomes["successful"] + outcomes["failed"]
    members = Counter(c.parent for c in changes if c.parent)
    return {"total": len(releases), "open": sum(1 for r in releases if not r.outcome),
            "outcomes": dict(sorted(outcomes.items())), "successful": outcomes["successful"], "went": went,
            "success_rate_percent": percent(outcomes["successful"], went),
            "changes_per_release": round(sum(members[r.id] for r in releases) / len(releases), 1) if releases
            else None}


def process_kpis(cases: list[Run]) -> dict:
    """What every process has, declared by anyone: runs opened in the window, how many are
    still open, and the finished ones by outcome (ItsmOutcome, else the final state)."""
    finished = [c for c in cases if not c.running]
    return {"opened": len(cases), "open": len(cases) - len(finished),
            "outcomes": dict(sorted(Counter(c.outcome or c.state or "-" for c in finished).items()))}


# --- the report ------------------------------------------------------------------------------


def compute(runs: Iterable[Run], since: datetime, until: datetime) -> dict:
    """The whole report, with stable keys (see README, "KPIs and reports")."""
    cases = merge(runs)
    excluded: dict[str, Counter] = {}
    counted = []
    for case in cases:
        reason = case.status if case.status in EXCLUDED_STATUSES else "untracked" if case.untracked else None
        if reason is None:
            counted.append(case)
        elif since <= case.started < until or case.running:
            excluded.setdefault(case.process, Counter())[reason] += 1
    cohort = [c for c in counted if since <= c.started < until]
    of = lambda process, cases: [c for c in cases if c.process == process]  # noqa: E731
    return {
        "window": {"since": _iso(since), "until": _iso(until)},
        "incidents": incident_kpis(of("incident", cohort)),
        "changes": change_kpis(of("change", cohort)),
        "requests": request_kpis(of("request", cohort), of("item", cohort)),
        "releases": release_kpis(of("release", cohort), of("change", counted)),
        "backlog": {"as_of": _iso(until), **backlog(counted, until)},
        "trend": trend(of("incident", counted), since, until),
        "processes": {name: process_kpis(of(name, cohort)) for name in sorted({c.process for c in cohort})},
        "excluded": {p: dict(sorted(v.items())) for p, v in sorted(excluded.items())},
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
