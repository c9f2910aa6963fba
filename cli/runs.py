"""`itsm runs list|show|history|timeline`: any process, by id; history is the audit trail,
timeline the same trail laid out to read (or as a Mermaid gantt)."""

from __future__ import annotations

import click

from cli.common import FullHelpGroup, ProcessName, emit_json, iso_utc, json_option, run, short_time, ui_link


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
        from itsmflow.app.runs import list_rows

        return await list_rows(client, process, state, limit, priority, groups)

    rows = run(work)
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
        from itsmflow.app.runs import describe_run

        return await describe_run(client, run_id) | {"ui": ui_link(run_id)}

    _print_run(run(work, subject=run_id), as_json)


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
