"""`itsm release plan|approve|reject|go|no-go|cancel|show|list|graph`."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from cli.commands import action_commands
from cli.common import (
    FullHelpGroup,
    ValidationFailed,
    actor_option,
    emit_json,
    json_option,
    parse_time,
    require_worker,
    run,
    short_time,
    show_status,
    timeout_seconds,
    to_json_model,
)
from workflows.release_process import RELEASE


@click.group("release", cls=FullHelpGroup)
def release_group() -> None:
    """Releases: changes under one approval and window, go / no-go, a DAG, back-out."""


def _new_change(value: str):
    from itsmflow.app.release_ops import NewChange

    label, sep, rest = value.partition("=")
    title, at, cis = rest.rpartition("@")
    if not sep or not at or not label.strip() or not title.strip() or not cis.strip():
        raise ValidationFailed(f"--new {value!r}: expected LABEL=TITLE@CI[,CI]")
    return NewChange(label.strip(), title.strip(), [ci.strip() for ci in cis.split(",") if ci.strip()])


def _after(values: tuple[str, ...]) -> dict[str, list[str]]:
    after: dict[str, list[str]] = {}
    for value in values:
        change, sep, before = value.partition("=")
        if not sep or not change.strip() or not before.strip():
            raise ValidationFailed(f"--after {value!r}: expected CHANGE=BEFORE[,BEFORE] (ids or --new labels)")
        after.setdefault(change.strip(), []).extend(b.strip() for b in before.split(",") if b.strip())
    return after


@release_group.command("plan")
@click.option("--title", required=True, help="What the release delivers.")
@click.option("--start", required=True, help="Window start: ISO-8601 with offset, 'now', or from now ('+2h').")
@click.option("--end", required=True, help="Window end: ISO-8601 with offset, or from now ('+4h').")
@click.option("--change", "changes", multiple=True, help="An existing change (CHG-…) that joins (repeatable).")
@click.option("--new", "new", multiple=True, help="A change created with it: LABEL=TITLE@CI[,CI] (repeatable).")
@click.option("--after", "after", multiple=True,
              help="CHANGE=BEFORE[,BEFORE]: implement CHANGE once BEFORE succeeded (ids or labels; repeatable).")
@click.option("--manager", required=True, help="The release manager: decides go / no-go at window start.")
@click.option("--description", default="", help="Longer description.")
@click.option("--policy", envvar="ITSM_CHANGE_POLICY", default="acme-change", show_default=True,
              help="Change policy for the new changes and the approval chain (or ITSM_CHANGE_POLICY).")
@actor_option
@json_option
def plan_cmd(title, start, end, changes, new, after, manager, description, policy, actor, as_json):
    """Plan a release; prints its id once it waits for approval. Refused (exit 2, nothing
    started) when a change cannot join, falls outside the window, the DAG is wrong, or the
    window is booked by a change outside the release."""
    from definitions import registry
    from definitions.change import ChangePolicy

    now = datetime.now(timezone.utc)
    window = parse_time(start, "--start"), parse_time(end, "--end")
    new_changes = [_new_change(value) for value in new]
    dag = _after(after)
    try:
        change_policy = registry.get(policy, ChangePolicy)
    except registry.DefinitionError as err:
        raise ValidationFailed(str(err)) from None
    if not changes:  # nothing to read first: refuse a bad plan before connecting
        from itsmflow.app import release_ops

        try:
            release_ops.plan(title=title, start=window[0], end=window[1], requested_by=actor, manager=manager,
                             now=now, existing=[], new=new_changes, after=dag, policy=change_policy)
        except release_ops.PlanError as err:
            raise ValidationFailed(str(err)) from None

    async def work(client):
        from datetime import timedelta

        from itsmflow.app import release_ops
        from worker.connect import task_queue

        rpc_timeout = timedelta(seconds=timeout_seconds())
        try:
            existing = await release_ops.read_changes(client, list(dict.fromkeys(changes)), rpc_timeout)
            release = release_ops.plan(title=title, start=window[0], end=window[1], requested_by=actor,
                                       manager=manager, now=now, existing=existing, new=new_changes, after=dag,
                                       policy=change_policy, description=description)
            await require_worker(client, task_queue())
            status = await release_ops.create(client, release, task_queue(), rpc_timeout)
        except release_ops.PlanError as err:
            raise ValidationFailed(str(err)) from None
        if status.state.value == "rejected":
            raise ValidationFailed(f"{status.id} rejected: {status.reason}")
        return status

    status = run(work)
    if as_json:
        emit_json(to_json_model(status))
    else:
        click.echo(status.id)


OPTIONS: dict[str, tuple[click.Parameter, ...]] = {
    "approve": (click.Option(["--comment"], default="", help="Why you approve."),),
    "reject": (click.Option(["--reason"], required=True, help="Why (recorded; the changes are canceled)."),),
    "go": (click.Option(["--comment"], default="", help="Recorded with the go."),),
    "no-go": (click.Option(["--reason"], required=True, help="Why (recorded; the changes are canceled)."),),
    "cancel": (click.Option(["--reason"], required=True, help="Why (recorded; the changes are canceled)."),),
}
action_commands(release_group, RELEASE, OPTIONS, id_name="release_id")


@release_group.command("show")
@click.argument("release_id")
@json_option
def show_cmd(release_id, as_json):
    """Show a release: state, window, its changes in DAG order, approvals."""
    from workflows.release_models import ReleaseStatus

    show_status(release_id, ReleaseStatus, as_json, format_release)


def format_release(status) -> str:
    from cli.commands import label_width

    lines = [f"{status.id}  {status.title}"]
    rows = [("state", status.state.value + (f" ({status.outcome.value})" if status.outcome else "")
             + (f": {status.reason}" if status.reason else "")),
            ("window", f"{short_time(status.window_start)} → {short_time(status.window_end)}"),
            ("manager", status.manager + (f" (decided by {status.decided_by})" if status.decided_by else ""))]
    width = label_width(rows)
    lines += [f"  {k:<{width}}{v}" for k, v in rows]
    for member in status.members:
        after = f" after {', '.join(member.after)}" if member.after else ""
        outcome = f" → {member.outcome}" if member.outcome else ""
        back_out = f" (back-out {member.back_out})" if member.back_out else ""
        lines.append(f"  change     {member.id} {member.state}{outcome}{after}{back_out}")
    for level in status.approvals:
        lines.append(f"  approval {level.level} {level.name} ({level.group}): {level.status.value}")
    lines += [f"  conflict   {c}" for c in status.conflicts]
    lines += [f"  notice     {n}" for n in status.notices]
    return "\n".join(lines)


@release_group.command("graph")
@click.argument("release_id")
def graph_cmd(release_id):
    """The release's DAG as a Mermaid flowchart (each change with its state)."""

    async def work(client):
        from itsmflow.app import release_ops

        return await release_ops.read(client, release_id)

    click.echo(release_graph(run(work, subject=release_id)))


def release_graph(status) -> str:
    node = lambda change_id: change_id.replace("-", "_")  # noqa: E731
    lines = ["flowchart LR"]
    for member in status.members:
        state = member.outcome or member.state
        lines.append(f'  {node(member.id)}["{member.id}<br/>{state}"]')
    for member in status.members:
        lines += [f"  {node(before)} --> {node(member.id)}" for before in member.after]
    return "\n".join(lines)


@release_group.command("list")
@click.option("--state", help="Only releases in this state.")
@click.option("--limit", default=50, show_default=True)
@json_option
def list_cmd(state, limit, as_json):
    """List releases, newest first."""
    from cli.runs import list_runs

    list_runs("release", state, limit, as_json)
