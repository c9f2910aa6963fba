"""The KPI rows, read from Temporal visibility: one list query over the window, plus one
per 100 long incidents for the runs they continued as new from (the list API does not say
which run came first), so an incident's age counts from when it opened. No history is
read and no worker is needed."""

from __future__ import annotations

from datetime import datetime

from itsmflow.app.kpis import Run
from itsmflow.app.queries import window_query


def run_from_execution(execution) -> Run:
    """A `Run` from a listed (or described) execution."""
    values = {pair.key.name: pair.value for pair in execution.typed_search_attributes}
    return Run(
        id=execution.id, process=values.get("ItsmProcess") or "", started=execution.start_time,
        status=execution.status.name.lower() if execution.status else "running", closed=execution.close_time,
        state=values.get("ItsmState"), priority=values.get("ItsmPriority"), type=values.get("ItsmType"),
        outcome=values.get("ItsmOutcome"), acked_at=values.get("ItsmAckedAt"),
        resolved_at=values.get("ItsmResolvedAt"), breaches=tuple(values.get("ItsmBreaches") or ()),
        parent=values.get("ItsmParent"),
    )


async def fetch_runs(client, since: datetime, until: datetime) -> list[Run]:
    executions = [e async for e in client.list_workflows(window_query(since, until))]
    from itsmflow.processes import processes

    continuing_processes = {p.name for p in processes() if p.continues_as_new}
    continuing = sorted({run.id for run in map(run_from_execution, executions)
                         if run.process in continuing_processes and "'" not in run.id})
    seen = {(e.id, e.run_id) for e in executions}
    for chunk in (continuing[n:n + 100] for n in range(0, len(continuing), 100)):
        quoted = ", ".join(f"'{run_id}'" for run_id in chunk)
        query = f"ExecutionStatus = 'ContinuedAsNew' AND WorkflowId IN ({quoted})"
        executions += [e async for e in client.list_workflows(query) if (e.id, e.run_id) not in seen]
    return [run_from_execution(e) for e in executions]
