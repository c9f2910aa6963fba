"""`itsm problem open|investigate|link|root-cause|known-error|resolve|close|cancel|show|list`.
A change is raised for a problem with `itsm change submit ... --problem PRB-...`."""

from __future__ import annotations

import click

from cli.commands import action_commands, start_command
from cli.common import (
    FullHelpGroup,
    actor_option,
    emit_json,
    idempotency_option,
    json_option,
    show_status,
    to_json_model,
)
from workflows.problem_process import PROBLEM


@click.group("problem", cls=FullHelpGroup)
def problem_group() -> None:
    """Problems: the causes behind recurring incidents, known errors, fixes by change."""


@problem_group.command("open")
@click.option("--title", required=True)
@click.option("--ci", required=True, help="The CI whose incidents the problem is about.")
@click.option("--incident", "incidents", multiple=True, help="Link this incident (repeatable).")
@click.option("--description", default="")
@click.option("--policy", envvar="ITSM_PROBLEM_POLICY", default="acme-problem", show_default=True)
@idempotency_option
@actor_option
@json_option
def open_cmd(title, ci, incidents, description, policy, idempotency_key, actor, as_json):
    """Open a problem by hand; prints its id once it waits for investigation."""
    from itsmflow.app.problem_submit import SubmitError, build_problem

    status = start_command(lambda: build_problem(title=title, ci=ci, incidents=incidents, description=description,
                                                 opened_by=actor, policy_name=policy),
                           (SubmitError,), _open_problem, idempotency_key)
    if as_json:
        emit_json(to_json_model(status))
    else:
        click.echo(status.id)


async def _open_problem(client, problem, queue, **options):
    """Temporal loads once the input is valid (a refusal stays fast)."""
    from itsmflow.app import problem_ops

    return await problem_ops.open_problem(client, problem, queue, **options)


# The noun commands are the declaration's actions, with the options that fill their fields.
OPTIONS: dict[str, tuple[click.Parameter, ...]] = {
    "link": (click.Argument(["incident_id"]),),
    "root-cause": (click.Argument(["text"]),),
    "known-error": (click.Option(["--workaround"], required=True),),
    "resolve": (click.Option(["--notes"], default=""),),
    "close": (click.Option(["--reason"], default=""),),
    "cancel": (click.Option(["--reason"], required=True),),
}
action_commands(problem_group, PROBLEM, OPTIONS, id_name="problem_id", skip=("link-change", "change-not-started"))


@problem_group.command("show")
@click.argument("problem_id")
@json_option
def show_cmd(problem_id, as_json):
    """State, CI, linked incidents and changes, root cause, known error, timeline."""
    from workflows.problem_models import ProblemStatus

    show_status(problem_id, ProblemStatus, as_json, format_problem)


def format_problem(status) -> str:
    """The `show` text (itsmflow.app.cards draws it from JSON; the lean path uses the same)."""
    from itsmflow.app.cards import problem_card

    return problem_card(status.model_dump(mode="json"))


@problem_group.command("list")
@click.option("--state", help="Only problems in this state.")
@click.option("--limit", default=50, show_default=True)
@json_option
def list_cmd(state, limit, as_json):
    """List problems, newest first."""
    from cli.runs import list_runs

    list_runs("problem", state, limit, as_json)
