"""`itsm catalog list|show`, `itsm request submit|approve|reject|cancel|show|list`,
`itsm task list|complete|fail`."""

from __future__ import annotations

import click

from cli.common import (
    FullHelpGroup,
    ValidationFailed,
    actor_option,
    emit_json,
    idempotency_option,
    json_option,
    read_json,
    require_worker,
    run,
    short_time,
    timeout_seconds,
    to_json_model,
    ui_link,
)


@click.group("catalog", cls=FullHelpGroup)
def catalog_group() -> None:
    """The service catalog."""


def _catalog():
    from definitions import registry
    from definitions.catalog import Catalog

    return registry.get(registry.DEFAULT_CATALOG, Catalog)


@catalog_group.command("list")
@json_option
def catalog_list(as_json):
    """Orderable items."""
    items = [{"name": i.name, "title": i.title, "approval": bool(i.approval), "description": i.description}
             for i in _catalog().items]
    if as_json:
        emit_json(items)
        return
    for item in items:
        click.echo(f"{item['name']:<12} {item['title']:<20} {item['description']}")


@catalog_group.command("show")
@click.argument("name")
@json_option
def catalog_show(name, as_json):
    """An item's variables (types, choices, ranges, help), approvals and plan."""
    item = _catalog().item(name)
    if item is None:
        raise ValidationFailed(f"unknown catalog item {name!r}")
    if as_json:
        emit_json(item.model_dump(mode="json"))
        return
    click.echo(f"{item.name}: {item.title}\n  {item.description}")
    for v in item.variables:
        detail = ", ".join(v.choices) if v.choices else (f"{v.minimum}-{v.maximum}" if v.minimum is not None else "")
        click.echo(f"  --var {v.name}=<{v.type.value}{': ' + detail if detail else ''}>"
                   f"{'' if v.required else ' (optional)'}  {v.help}")
    if item.approval:
        groups = ", ".join(level.group for level in item.approval.levels)
        condition = f" when {item.approval_when.variable} is {'/'.join(item.approval_when.values)}" \
            if item.approval_when else ""
        click.echo(f"  approval: {groups}{condition}")
    for task in item.tasks:
        click.echo(f"  task {task.name}: {task.kind.value} {task.title}"
                   + (f" (after {', '.join(task.after)})" if task.after else ""))
    for entry in item.bundle:
        click.echo(f"  item {entry.item}" + (f" (after {', '.join(entry.after)})" if entry.after else ""))


@click.group("request", cls=FullHelpGroup)
def request_group() -> None:
    """Requests from the catalog: submit, decide, cancel, inspect."""


@request_group.command("submit")
@click.argument("item")
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="A catalog variable (repeatable).")
@click.option("--for", "requested_for", help="Who it is for [default: you].")
@idempotency_option
@actor_option
@json_option
def submit_cmd(item, pairs, requested_for, idempotency_key, actor, as_json):
    """Request a catalog item; prints REQ-… once its items are under way."""
    from definitions import registry
    from itsmflow.app.request_submit import SubmitError, build_request, parse_pairs

    try:
        request = build_request(item_name=item, raw=parse_pairs(list(pairs)), requested_by=actor,
                                requested_for=requested_for)
    except (SubmitError, registry.DefinitionError) as err:
        raise ValidationFailed(str(err)) from None

    async def work(client):
        from datetime import timedelta

        from itsmflow.app import request_ops
        from worker.connect import task_queue

        await require_worker(client, task_queue())
        return await request_ops.submit(client, request, task_queue(), timedelta(seconds=timeout_seconds()),
                                        idempotency_key=idempotency_key)

    status = run(work)
    emit_json(to_json_model(status)) if as_json else click.echo(status.id)


def _decide(run_id: str, name: str, arg, as_json: bool) -> None:
    async def work(client):
        from itsmflow.app import request_ops

        try:
            return await request_ops.decide(client, run_id, name, arg)
        except LookupError as err:
            raise ValidationFailed(str(err)) from None

    status = run(work, subject=run_id)
    emit_json(to_json_model(status)) if as_json else click.echo(f"{status.id} {status.state.value}")


@request_group.command("approve")
@click.argument("run_id", metavar="ID")
@click.option("--comment", default="")
@actor_option
@json_option
def approve_cmd(run_id, comment, actor, as_json):
    """Approve the item awaiting you (REQ-… or RITM-…)."""
    from workflows.change_models import ApproveInput

    _decide(run_id, "approve", ApproveInput(actor=actor, comment=comment), as_json)


@request_group.command("reject")
@click.argument("run_id", metavar="ID")
@click.option("--reason", required=True)
@actor_option
@json_option
def reject_cmd(run_id, reason, actor, as_json):
    """Reject the item awaiting you (REQ-… or RITM-…)."""
    from workflows.change_models import RejectInput

    if not reason.strip():
        raise ValidationFailed("--reason must not be empty")
    _decide(run_id, "reject", RejectInput(actor=actor, reason=reason), as_json)


@request_group.command("cancel")
@click.argument("request_id")
@click.option("--reason", default="")
@actor_option
@json_option
def cancel_cmd(request_id, reason, actor, as_json):
    """Cancel (requester or service desk): completed automated work is undone, last first."""
    from workflows.request_models import CancelRequestInput

    async def work(client):
        from itsmflow.app import request_ops

        return await request_ops.cancel(client, request_id, CancelRequestInput(actor=actor, reason=reason))

    status = run(work, subject=request_id)
    emit_json(to_json_model(status)) if as_json else click.echo(f"{status.id} {status.state.value}")


@request_group.command("show")
@click.argument("request_id")
@json_option
def show_cmd(request_id, as_json):
    """Items, approvals, tasks with states and assignees, fulfillment SLA."""

    async def work(client):
        from itsmflow.app import ops, request_ops
        from workflows.request_models import RequestStatus

        read = await ops.read(client, request_id, RequestStatus)
        return read, await request_ops.items(client, read.status)

    read, items = run(work, subject=request_id)
    request = read.status
    if as_json:
        emit_json(read_json(read, items=[to_json_model(i) if i else {**ref.model_dump(mode="json")}
                                         for ref, i in zip(request.items, items)]))
        return
    click.echo(f"{request.id}  {request.title} for {request.requested_for}: {request.state.value}")
    for ref, item in zip(request.items, items):
        if item is None:
            click.echo(f"  {ref.id} {ref.item}: {ref.state.value} {ref.reason}")
            continue
        due = f", SLA {item.sla.elapsed_percent:.0f}% due {short_time(item.sla.due)}" if item.sla else ""
        click.echo(f"  {item.id} {item.item}: {item.state.value}{due}" + (f" ({item.reason})" if item.reason else ""))
        for level in item.approvals:
            who = ", ".join(f"{d.user} {d.decision.value}" for d in level.decisions) or "waiting"
            click.echo(f"    approval {level.group}: {level.status.value} ({who})")
        for task in item.tasks:
            extra = " ".join(x for x in (task.task_id or "", task.group or "", f"by {task.by}" if task.by else "",
                                         "(fallback)" if task.fallback else "") if x)
            click.echo(f"    task {task.name}: {task.state.value} {extra}")
    click.echo(f"  ui  {ui_link(request.id)}")
    if read.stale:
        click.echo(f"  as of  {short_time(read.as_of)}, may be stale: {read.stale}")


@request_group.command("list")
@click.option("--state")
@click.option("--limit", default=50, show_default=True)
@json_option
def list_cmd(state, limit, as_json):
    """List requests, newest first."""
    from cli.runs import list_runs

    list_runs("request", state, limit, as_json)


@click.group("task", cls=FullHelpGroup)
def task_group() -> None:
    """Manual fulfillment tasks."""


@task_group.command("list")
@click.option("--group", help="Only this group's tasks.")
@click.option("--mine", is_flag=True, help="Only tasks of your groups (needs --as / ITSM_USER).")
@click.option("--as", "actor", envvar="ITSM_USER", metavar="USER")
@json_option
def task_list(group, mine, actor, as_json):
    """Open tasks."""
    from cli.runs import list_runs

    groups = None
    if mine:
        from definitions import registry
        from definitions.org import Organisation

        if not actor:
            raise ValidationFailed("--mine needs --as USER or ITSM_USER")
        org = registry.get(_catalog().organisation, Organisation)
        groups = [g.name for g in org.groups if actor in g.members]
    list_runs("task", "open", 100, as_json, groups=[group] if group else groups)


def _task_action(task_id: str, name: str, actor: str, notes: str, as_json: bool) -> None:
    from workflows.request_models import TaskActionInput

    async def work(client):
        from itsmflow.app import request_ops

        return await request_ops.task_action(client, task_id, name, TaskActionInput(actor=actor, notes=notes))

    result = run(work, subject=task_id)
    emit_json(to_json_model(result)) if as_json else click.echo(f"{result.id} {result.state.value}")


@task_group.command("complete")
@click.argument("task_id")
@click.option("--notes", default="")
@actor_option
@json_option
def task_complete(task_id, notes, actor, as_json):
    """Mark a task done (a member of its group)."""
    _task_action(task_id, "complete", actor, notes, as_json)


@task_group.command("fail")
@click.argument("task_id")
@click.option("--notes", default="")
@actor_option
@json_option
def task_fail(task_id, notes, actor, as_json):
    """Mark a task failed (say why in --notes): the item fails and its automated work is undone."""
    _task_action(task_id, "fail", actor, notes, as_json)
