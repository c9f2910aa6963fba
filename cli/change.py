"""`itsm change submit|approve|reject|complete|cancel|show|list`."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from cli.commands import action_commands
from cli.common import (
    FullHelpGroup,
    ValidationFailed,
    actor_option,
    emit_json,
    idempotency_option,
    json_option,
    parse_time,
    require_worker,
    run,
    show_status,
    timeout_seconds,
    to_json_model,
)
from workflows.change_process import CHANGE


@click.group("change", cls=FullHelpGroup)
def change_group() -> None:
    """Change requests: submit, decide, implement, inspect."""


@change_group.command("submit")
@click.option("--title", required=True, help="What the change does.")
@click.option("--ci", "cis", multiple=True, required=True, help="Affected CI (repeatable).")
@click.option("--type", "change_type", type=click.Choice(["normal", "standard", "emergency"]), default="normal",
              show_default=True)
@click.option("--template", help="Pre-approved template (standard changes).")
@click.option("--start", required=True, help="Planned start: ISO-8601 with offset, 'now', or from now ('+2h').")
@click.option("--end", required=True, help="Planned end: ISO-8601 with offset, or from now ('+1h').")
@click.option("--outage", is_flag=True, help="The change requires a service outage.")
@click.option("--description", default="", help="Longer description.")
@click.option("--problem", help="The problem this change fixes (PRB-...): a successful close resolves it.")
@click.option("--policy", envvar="ITSM_CHANGE_POLICY", default="acme-change", show_default=True,
              help="Change policy name (or ITSM_CHANGE_POLICY).")
@idempotency_option
@actor_option
@json_option
def submit_cmd(title, cis, change_type, template, start, end, outage, description, problem, policy, idempotency_key,
               actor, as_json):
    """Submit a change; prints its id once it waits for approval (or is scheduled)."""
    from definitions import registry
    from definitions.change import ChangePolicy, ChangeType
    from itsmflow.app.change_submit import SubmitError, build_change
    from itsmflow.app.ids import new_id

    now = datetime.now(timezone.utc)
    try:
        change = build_change(
            change_id=new_id("CHG", now), title=title, cis=list(cis), change_type=ChangeType(change_type),
            template=template, start=parse_time(start, "--start"), end=parse_time(end, "--end"),
            outage=outage, description=description, requested_by=actor, now=now,
            policy=registry.get(policy, ChangePolicy), problem=problem,
        )
    except (SubmitError, registry.DefinitionError) as err:
        raise ValidationFailed(str(err)) from None

    async def work(client):
        from datetime import timedelta

        from itsmflow.app import change_ops
        from worker.connect import task_queue

        await require_worker(client, task_queue())
        rpc_timeout = timedelta(seconds=timeout_seconds())
        return await change_ops.submit(client, change, task_queue(), rpc_timeout=rpc_timeout,
                                       idempotency_key=idempotency_key)

    status = run(work, subject=problem)
    if status.state.value == "rejected" and status.reason.startswith("conflicts with release"):
        # A release's window is its own: the change is refused (it stays, rejected, in the audit).
        raise ValidationFailed(f"{status.id} rejected: {status.reason}")
    if as_json:
        emit_json(to_json_model(status))
    else:
        click.echo(status.id)


def _not_blank(ctx, param, value):
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


# The noun commands are the declaration's actions, with the options that fill their fields.
OPTIONS: dict[str, tuple[click.Parameter, ...]] = {
    "approve": (click.Option(["--comment"], default="", help="Why you approve."),),
    "reject": (click.Option(["--reason"], required=True, callback=_not_blank,
                            help="Why (recorded and sent to the requester)."),),
    "complete": (click.Option(["--outcome"], type=click.Choice(["successful", "failed", "backed-out"]), required=True),
                 click.Option(["--notes"], default="", help="Implementation notes.")),
    "cancel": (click.Option(["--reason"], default="", help="Why."),),
}
action_commands(change_group, CHANGE, OPTIONS, id_name="change_id")


@change_group.command("show")
@click.argument("change_id")
@json_option
def show_cmd(change_id, as_json):
    """Show a change: state, risk, schedule, approvals with decisions."""
    from workflows.change_models import ChangeStatus

    show_status(change_id, ChangeStatus, as_json, format_change)


def format_change(status) -> str:
    """The `show` text (itsmflow.app.cards draws it from JSON; the lean path uses the same)."""
    from itsmflow.app.cards import change_card

    return change_card(status.model_dump(mode="json"))


@change_group.command("list")
@click.option("--state", help="Only changes in this state.")
@click.option("--limit", default=50, show_default=True)
@json_option
def list_cmd(state, limit, as_json):
    """List changes, newest first."""
    from cli.runs import list_runs

    list_runs("change", state, limit, as_json)
