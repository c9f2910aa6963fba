"""Runs of any process, from visibility and describe: what `itsm runs list|show` print and
the HTTP service will serve."""

from __future__ import annotations

from itsmflow.app.formats import first_line, iso_utc
from itsmflow.app.ids import process_of
from itsmflow.app.queries import list_query


async def list_rows(client, process: str | None, state: str | None, limit: int, priority: str | None = None,
                    groups: list[str] | None = None) -> list[dict]:
    """Visibility rows, newest first; a row nobody here can decode is marked, not dropped."""
    rows = []
    async for execution in client.list_workflows(list_query(process, state, priority, groups), limit=limit):
        attrs = execution.search_attributes
        try:
            memo = await execution.memo()
        except Exception as err:  # noqa: BLE001 (one row nobody here can decode must not hide the rest)
            memo = {"title": f"(cannot decode: {first_line(err)})", "undecodable": True}
        rows.append({
            "id": execution.id,
            "process": (attrs.get("ItsmProcess") or [None])[0],
            "state": (attrs.get("ItsmState") or [None])[0],
            "priority": (attrs.get("ItsmPriority") or [None])[0],
            "group": (attrs.get("ItsmGroup") or [None])[0],
            "parent": (attrs.get("ItsmParent") or [None])[0],
            "title": memo.get("title", ""),
            "requested_by": (attrs.get("ItsmRequester") or [None])[0],
            "cis": list(attrs.get("ItsmCI") or []),
            "started": iso_utc(execution.start_time),
            "closed": iso_utc(execution.close_time),
            "status": execution.status.name.lower() if execution.status else None,
            **({"undecodable": True} if memo.get("undecodable") else {}),
        })
    return sorted(rows, key=lambda row: row["started"] or "", reverse=True)

async def describe_run(client, run_id: str) -> dict:
    """Temporal's view of one run: status, state, pending activities with their failures, and a
    workflow task that keeps failing."""
    description = await client.get_workflow_handle(run_id).describe()
    attrs = description.typed_search_attributes
    values = {pair.key.name: pair.value for pair in attrs}
    raw = description.raw_description
    from worker.connect import failure_message

    pending = [
        {
            "activity": p.activity_type.name, "attempt": p.attempt, "state": int(p.state),
            "last_failure": await failure_message(client, p.last_failure) if p.HasField("last_failure") else None,
        }
        for p in raw.pending_activities
    ]
    memo = await description.memo()
    wedged = raw.pending_workflow_task if raw.HasField("pending_workflow_task") else None
    return {
        "id": description.id, "process": values.get("ItsmProcess") or process_of(run_id),
        "state": values.get("ItsmState"), "title": memo.get("title", ""),
        "status": description.status.name.lower() if description.status else None,
        "workflow_type": description.workflow_type, "task_queue": description.task_queue,
        "started": iso_utc(description.start_time), "closed": iso_utc(description.close_time),
        "history_length": description.history_length, "pending_activities": pending,
        "workflow_task": await failing_workflow_task(client, run_id, wedged),
        "search_attributes": {k: (v if not hasattr(v, "isoformat") else iso_utc(v)) for k, v in values.items()
                              if k.startswith("Itsm")},
    }


async def failing_workflow_task(client, run_id: str, pending) -> dict | None:
    """A workflow task that keeps failing (attempt ≥ 2) and why: Temporal records its first
    failure in history and counts the retries in the pending task. None when it is not failing."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest

    from worker.connect import failure_message

    if pending is None or pending.attempt < 2:
        return None
    request = GetWorkflowExecutionHistoryReverseRequest(namespace=client.namespace, maximum_page_size=200)
    request.execution.workflow_id = run_id
    message = None
    try:
        page = await client.workflow_service.get_workflow_execution_history_reverse(request)
        failed = next((e.workflow_task_failed_event_attributes for e in page.history.events
                       if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED), None)
        if failed is not None:
            message = await failure_message(client, failed.failure)
    except Exception:  # noqa: BLE001 (the attempt count alone still says it is wedged)
        pass
    return {"attempt": pending.attempt, "last_failure": message}
