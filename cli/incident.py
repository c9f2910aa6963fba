"""`itsm incident open|ack|escalate|reassign|priority|hold|resume|resolve|reopen|note|major|show|list`."""

from __future__ import annotations

import click

from cli.commands import action_commands, start_command, timeline_card
from cli.common import (
    FullHelpGroup,
    ValidationFailed,
    actor_option,
    emit_json,
    idempotency_option,
    json_option,
    short_time,
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
    from datetime import timedelta

    from definitions.base import format_hours

    esc = status.escalation
    if esc.active and esc.next_at:
        escalation = f"{esc.policy}: step {esc.step} at {short_time(esc.next_at)}"
    else:
        escalation = f"{esc.policy or 'none'}: stopped" if esc.policy else "none"
    ack = f", acknowledged by {status.acknowledged_by} at {short_time(status.acknowledged_at)}" \
        if status.acknowledged_by else ""
    rows = [
        ("state", status.state.value + (" (MAJOR)" if status.major else "")),
        ("priority", f"{status.priority.value} (impact {status.impact}, urgency {status.urgency})"),
        ("group", status.assigned_group + ack),
        ("ci", (status.ci or "-") + (f" → services {', '.join(status.impacted_services)}"
                                     if status.impacted_services else "")),
        ("escalation", escalation),
    ]
    for clock in status.sla.values():
        flags = [f for f, on in (("met", clock.met_at), ("paused", clock.paused), ("BREACHED", clock.breached)) if on]
        target = format_hours(clock.target) if isinstance(clock.target, timedelta) else clock.target
        rows.append((f"sla {clock.name}", f"{clock.elapsed_percent:.0f}% of {target} ({clock.calendar}), "
                                          f"due {short_time(clock.due)}" + (f" [{', '.join(flags)}]" if flags else "")))
    if status.dedup_key:
        rows.append(("dedup",
                     f"{status.dedup_key}: {status.dedup_count} event(s), last {short_time(status.last_seen)}"))
        rows += [("  event", f"{short_time(e.seen_at)} {e.title}") for e in status.recent_events]
    if status.problem:
        rows.append(("problem", status.problem))
    rows += [("workaround", f"{k.workaround} (known error {k.problem_id}: {k.title})") for k in status.known_errors]
    if status.resolution_code:
        rows.append(("resolution", status.resolution_code + (f": {status.resolution_notes}"
                                                             if status.resolution_notes else "")))
    return timeline_card(status, rows)


@incident_group.command("list")
@click.option("--state", help="Only incidents in this state.")
@click.option("--priority", type=click.Choice(["P1", "P2", "P3", "P4"]))
@click.option("--limit", default=50, show_default=True)
@json_option
def list_cmd(state, priority, limit, as_json):
    """List incidents, newest first."""
    from cli.runs import list_runs

    list_runs("incident", state, limit, as_json, priority=priority)
