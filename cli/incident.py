"""`itsm incident open|ack|escalate|reassign|priority|hold|resume|resolve|reopen|note|major|show|list`."""

from __future__ import annotations

import click

from cli.commands import action_commands, start_command
from cli.common import (
    FullHelpGroup,
    ValidationFailed,
    actor_option,
    emit_json,
    idempotency_option,
    json_option,
    show_status,
    to_json_model,
)
from workflows.incident_process import INCIDENT

level = click.IntRange(1, 3)


@click.group("incident", cls=FullHelpGroup)
def incident_group() -> None:
    """Incidents: open, respond, escalate, resolve, inspect."""


@incident_group.command("open")
@click.option("--title", required=True)
@click.option("--ci", help="Affected CI.")
@click.option("--impact", type=level, required=True, help="1 high … 3 low.")
@click.option("--urgency", type=level, required=True, help="1 high … 3 low.")
@click.option("--group", help="Assignment group [default: the CI's owner, else the policy default].")
@click.option("--dedup-key", help="Attach to the open incident with this key instead of opening another.")
@click.option("--description", default="")
@click.option("--policy", envvar="ITSM_INCIDENT_POLICY", default="acme-incident", show_default=True)
@idempotency_option
@actor_option
@json_option
def open_cmd(title, ci, impact, urgency, group, dedup_key, description, policy, idempotency_key, actor, as_json):
    """Open an incident; prints its id (or the existing one for a dedup hit)."""
    from itsmflow.app.incident_submit import SubmitError, build_incident

    if dedup_key and idempotency_key:
        raise ValidationFailed("--dedup-key already makes a repeated open return the same incident: "
                               "drop --idempotency-key")
    status, attached = start_command(
        lambda: build_incident(title=title, ci=ci, impact=impact, urgency=urgency, group=group, dedup_key=dedup_key,
                               description=description, opened_by=actor, policy_name=policy),
        (SubmitError,), _open_incident, idempotency_key)
    if as_json:
        emit_json({**to_json_model(status), "attached": attached})
    else:
        click.echo(status.id)


async def _open_incident(client, incident, queue, **options):
    """Temporal loads once the input is valid (a refusal stays fast)."""
    from itsmflow.app import incident_ops

    return await incident_ops.open_incident(client, incident, queue, **options)


# The noun commands are the declaration's actions (name, update, argument model, help), with
# the options that fill each argument's fields.
OPTIONS: dict[str, tuple[click.Parameter, ...]] = {
    "escalate": (click.Option(["--to-step"], type=click.IntRange(1)),),
    "reassign": (click.Option(["--group"], required=True), click.Option(["--reason"], default="")),
    "priority": (click.Option(["--impact"], type=level, required=True),
                 click.Option(["--urgency"], type=level, required=True), click.Option(["--reason"], default="")),
    "hold": (click.Option(["--reason"], required=True),),
    "resolve": (click.Option(["--code"], required=True), click.Option(["--notes"], default="")),
    "reopen": (click.Option(["--reason"], default=""),),
    "note": (click.Argument(["text"]),),
    "major": (click.Option(["--reason"], default=""),),
}

action_commands(incident_group, INCIDENT, OPTIONS, id_name="incident_id")


@incident_group.command("show")
@click.argument("incident_id")
@json_option
def show_cmd(incident_id, as_json):
    """State, priority, assignee, escalation position, SLA clocks, impacted services, timeline."""
    from workflows.incident_models import IncidentStatus

    show_status(incident_id, IncidentStatus, as_json, format_incident)


def format_incident(status) -> str:
    """The `show` text (itsmflow.app.cards draws it from JSON; the lean path uses the same)."""
    from itsmflow.app.cards import incident_card

    return incident_card(status.model_dump(mode="json"))


@incident_group.command("list")
@click.option("--state", help="Only incidents in this state.")
@click.option("--priority", type=click.Choice(["P1", "P2", "P3", "P4"]))
@click.option("--limit", default=50, show_default=True)
@json_option
def list_cmd(state, priority, limit, as_json):
    """List incidents, newest first."""
    from cli.runs import list_runs

    list_runs("incident", state, limit, as_json, priority=priority)
