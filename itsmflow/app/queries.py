"""Visibility list queries over the shared search attributes (runs list, audit export, KPIs)."""

from __future__ import annotations

from datetime import datetime

from itsmflow.app.formats import iso_utc


def list_query(process: str | None, state: str | None, priority: str | None = None,
           groups: list[str] | None = None) -> str:
    clauses = [f"ItsmProcess = '{process}'" if process else "ItsmProcess IS NOT NULL"]
    if state:
        clauses.append(f"ItsmState = '{state}'")
    if priority:
        clauses.append(f"ItsmPriority = '{priority}'")
    if groups is not None:
        clauses.append("ItsmGroup IN (" + ", ".join(f"'{g}'" for g in groups or ["-"]) + ")")
    return " AND ".join(clauses)


def window_query(since: datetime | None = None, until: datetime | None = None, process: str | None = None) -> str:
    """Every run that could have acted in [since, until): opened before `until` and still
    running or closed at or after `since` (audit export, KPI report)."""
    clauses = [list_query(process, None)]
    if until:
        clauses.append(f"StartTime < '{iso_utc(until)}'")
    if since:
        clauses.append(f"(ExecutionStatus = 'Running' OR CloseTime >= '{iso_utc(since)}')")
    return " AND ".join(clauses)
