"""Commands of the shape `itsm NOUN VERB ID [options] --as USER [--json]`: one validated
update whose argument is the declared action's model; and the `open`/`submit` plumbing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

import click

from cli.common import json_option, run_update

if TYPE_CHECKING:
    from itsmflow.process import Action, Process


def action_commands(group: click.Group, process: Process, options: dict[str, tuple[click.Parameter, ...]], *,
                    id_name: str, skip: tuple[str, ...] = ()) -> None:
    """A noun command per declared action of `process` (name, update, argument model, help
    from the declaration), with the options that fill the argument's fields. `skip`: the
    actions other commands send (`change submit --problem` links a change)."""
    for action in process.actions:
        if action.name not in skip:
            _action_command(group, process, action, id_name, options.get(action.name, ()))


def _action_command(group: click.Group, process: Process, action: Action, id_name: str,
                    params: tuple[click.Parameter, ...]) -> None:
    """`NAME ID [params] --as USER [--json]`: sends `action.update` with the action's model
    (the acting user and the params' fields); prints the new state (or the status JSON)."""
    fields = [param.name for param in params if param.name]

    @group.command(action.name, help=action.help, params=[click.Argument([id_name]), *params])
    @click.option("--as", "actor", envvar="ITSM_USER", required=True, metavar="USER", help="Acting user.")
    @json_option
    def command(actor: str, as_json: bool, **values: Any) -> None:
        from cli.common import ValidationFailed
        from itsmflow.app.generic import InputError, validated
        from itsmflow.process import resolve

        payload = {f: values[f] for f in fields if values.get(f) is not None}
        try:  # a value the model refuses (an empty note) is one line, exit 2, nothing sent
            arg = validated(resolve(action.input), {action.actor_field: actor, **payload})
        except InputError as err:
            raise ValidationFailed(str(err)) from None
        run_update(values[id_name], action.update, arg, resolve(process.status), as_json)


# Starts a run: (client, input, task queue, rpc_timeout=..., idempotency_key=...) → the settled status.
Starter = Callable[..., Awaitable[Any]]


def start_command(build: Callable[[], Any], refusals: tuple[type[Exception], ...], starter: Starter,
                  idempotency_key: str | None = None) -> Any:
    """`open`/`submit`: validate with `build()` (a refusal or an unknown definition exits 2,
    nothing started), require a polling worker, start with `starter` and return the settled
    result."""
    from cli.common import ValidationFailed, require_worker, run, timeout_seconds
    from definitions import registry

    try:
        arg = build()
    except refusals + (registry.DefinitionError,) as err:
        raise ValidationFailed(str(err)) from None

    async def work(client):
        from datetime import timedelta

        from worker.connect import task_queue

        await require_worker(client, task_queue())
        return await starter(client, arg, task_queue(), rpc_timeout=timedelta(seconds=timeout_seconds()),
                             idempotency_key=idempotency_key)

    return run(work)


def label_width(rows: list[tuple[str, str]]) -> int:
    """Labels line up, and a long one (`sla response`) never runs into its value."""
    return max([11, *(len(label) + 1 for label, _ in rows)])


def timeline_card(status, rows: list[tuple[str, str]]) -> str:
    """`show` of a process with an events timeline: title line, rows, timeline, notices."""
    from cli.common import short_time
    from workflows.models import TIMELINE_HEAD

    width = label_width(rows)
    lines = [f"{status.id}  {status.title}", *(f"  {k:<{width}}{v}" for k, v in rows), "  timeline"]
    timeline = [f"    {short_time(e.time)}  {e.actor:<7} {e.action:<15} {e.details}" for e in status.events]
    omitted = getattr(status, "events_omitted", 0)
    if omitted:  # the run keeps head and tail (its memo the tail); `itsm runs history` has every step
        at = TIMELINE_HEAD if len(status.events) > TIMELINE_HEAD else 0
        timeline.insert(at, f"    … {omitted} more event(s): itsm runs history {status.id}")
    lines += timeline
    lines += [f"  notice     {n}" for n in status.notices]
    return "\n".join(lines)

