"""`itsm runs list|show|history|timeline`: any process, by id; history is the audit trail,
timeline the same trail laid out to read (or as a Mermaid gantt)."""

from __future__ import annotations

from datetime import datetime

import click

from cli.common import FullHelpGroup, ProcessName, emit_json, iso_utc, json_option, run, short_time, ui_link
from itsmflow.app.ids import process_of
from itsmflow.app.queries import list_query


@click.group("runs", cls=FullHelpGroup)
def runs_group() -> None:
    """Runs of every process: list, inspect, audit."""


def list_runs(process: str | None, state: str | None, limit: int, as_json: bool, priority: str | None = None,
              groups: list[str] | None = None) -> None:
    from cli.common import ValidationFailed

    for label, value in (("--state", state), *(("--group", g) for g in groups or [])):
        if value and not value.replace("_", "").replace("-", "").isalnum():
            raise ValidationFailed(f"{label}: {value!r} is not a name")

    async def work(client):
        rows = []
        async for execution in client.list_workflows(list_query(process, state, priority, groups), limit=limit):
            attrs = execution.search_attributes
            try:
                memo = await execution.memo()
            except Exception as err:  # noqa: BLE001 (one row nobody here can decode must not hide the rest)
                from cli.common import _first_line

                memo = {"title": f"(cannot decode: {_first_line(err)})", "undecodable": True}
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
        return rows

    rows = sorted(run(work), key=lambda row: row["started"] or "", reverse=True)  # newest first
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no runs", err=True)
        return
    # The column a process's runs are told apart by shows too: its priority (incidents) or else
    # its group (tasks, problems), as its declaration says it sets them.
    extra = _extra_column(process)
    head = f"{extra.upper():<9} " if extra else ""
    click.echo(f"{'ID':<19} {'PROCESS':<9} {'STATE':<11} {head}{'STARTED':<21} TITLE")
    for row in rows:
        cell = f"{row[extra] or '-':<9} " if extra else ""
        click.echo(f"{row['id']:<19} {row['process'] or '-':<9} {row['state'] or '-':<11} {cell}"
                   f"{short_time(row['started']):<21} {row['title']}")


def _extra_column(process: str | None) -> str | None:
    if process is None:
        return None
    from itsmflow.processes import named

    attributes = named(process).attributes
    return "priority" if "ItsmPriority" in attributes else "group" if "ItsmGroup" in attributes else None


@runs_group.command("list")
@click.option("--process", type=ProcessName(), help="Only this process.")
@click.option("--state", help="Only runs in this state.")
@click.option("--limit", default=50, show_default=True)
@json_option
def list_cmd(process, state, limit, as_json):
    """List runs, newest first."""
    list_runs(process, state, limit, as_json)


@runs_group.command("show")
@click.argument("run_id")
@json_option
def show_cmd(run_id, as_json):
    """Describe a run: Temporal status, state, pending activities and their failures."""
    from itsmflow.app import lean

    info = lean.describe(run_id)
    if info is lean.NOT_FOUND:
        from cli.common import ValidationFailed

        raise ValidationFailed(f"no such id {run_id!r}")
    if info is not None:
        _print_run(info | {"ui": ui_link(run_id)}, as_json)
        return

    async def work(client):
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
            "ui": ui_link(run_id),
        }

    _print_run(run(work, subject=run_id), as_json)


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


def _print_run(info: dict, as_json: bool) -> None:
    from itsmflow.app.lean import format_run

    click.echo(format_run(info, as_json))


@runs_group.command("history")
@click.argument("run_id")
@json_option
def history_cmd(run_id, as_json):
    """The audit trail: time, actor, action, details (a request's includes its items and tasks)."""

    async def work(client):
        from itsmflow.app.audit import audit_trail

        return await audit_trail(client, run_id)

    rows = run(work, subject=run_id)
    if as_json:
        emit_json([{**r, "time": iso_utc(r["time"])} for r in rows])
        return
    several = len({r["run"] for r in rows}) > 1
    for r in rows:
        where = f"{r['run']:<19} " if several else ""
        click.echo(f"{short_time(r['time'])}  {where}{r['actor']:<8} {r['action']:<18} {r['details']}")


@runs_group.command("timeline")
@click.argument("run_id")
@click.option("--mermaid", is_flag=True, help="A Mermaid gantt chart: one bar per state, milestones for people.")
@json_option
def timeline_cmd(run_id, mermaid, as_json):
    """The audit trail as a timeline: time since start, a section per state, waits as gaps,
    human actions marked *, children (request → items → tasks) nested under their run."""
    from cli.common import ValidationFailed
    from itsmflow.app.timeline import entries_json, render_gantt, render_text, timeline_entries

    if mermaid and as_json:
        raise ValidationFailed("choose one of --mermaid and --json")

    async def work(client):
        from itsmflow.app.audit import audit_trail
        from itsmflow.app.timeline import parents_of

        rows = await audit_trail(client, run_id)
        return rows, await parents_of(client, rows, run_id)

    rows, parents = run(work, subject=run_id)
    entries = timeline_entries(rows, run_id, parents)
    if as_json:
        emit_json(entries_json(entries))
    else:
        click.echo(render_gantt(entries) if mermaid else render_text(entries), nl=False)
