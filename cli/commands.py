"""Commands of the shape `itsm NOUN VERB ID [options] --as USER [--json]`: one validated
update whose argument is a model from the process's models module."""

from __future__ import annotations

import click

from cli.common import run_update


def actor_command(group: click.Group, name: str, update: str, help_text: str, *params: click.Parameter,
                  models: str, status: str, id_name: str = "run_id", model: str = "ActorInput",
                  fields: tuple[str, ...] = ()) -> None:
    """Register `NAME ID [params] --as USER` on `group`, sending update `update` with
    `models.model(actor=..., **fields)`; prints the new state (or the `models.status` JSON)."""

    def callback(actor, as_json, **values):
        import importlib

        from cli.common import ValidationFailed
        from itsmflow.app.generic import InputError, validated

        module = importlib.import_module(models)
        payload = {f: values[f] for f in fields if values.get(f) is not None}
        try:  # a value the model refuses (an empty note) is one line, exit 2, nothing sent
            arg = validated(getattr(module, model), {"actor": actor, **payload})
        except InputError as err:
            raise ValidationFailed(str(err)) from None
        run_update(values[id_name], update, arg, getattr(module, status), as_json)

    group.add_command(click.Command(name, callback=callback, help=help_text, params=[
        click.Argument([id_name]), *params,
        click.Option(["--as", "actor"], envvar="ITSM_USER", required=True, metavar="USER", help="Acting user."),
        click.Option(["--json", "as_json"], is_flag=True, help="Machine-readable JSON output."),
    ]))


def action_commands(group: click.Group, process, options: dict[str, tuple[click.Parameter, ...]], *, status: str,
                    id_name: str, skip: tuple[str, ...] = ()) -> None:
    """Register a noun command per declared action of `process` (name, update, argument model,
    help from the declaration), with the options that fill the argument's fields. `skip`: the
    actions other commands send (`change submit --problem` links a change)."""
    for action in process.actions:
        if action.name in skip:
            continue
        params = options.get(action.name, ())
        models, _, model = action.input.rpartition(":")
        actor_command(group, action.name, action.update, action.help, *params, models=models, status=status,
                      id_name=id_name, model=model, fields=tuple(p.name for p in params))


def start_command(build, refusals: tuple[type[Exception], ...], ops_module: str | None, start: str | None,
                  idempotency_key: str | None = None, starter=None):
    """`open`/`submit`: validate with `build()` (a refusal or an unknown definition exits 2,
    nothing started), require a polling worker, start (`ops_module.start`, or `starter`) and
    return the settled result."""
    from cli.common import ValidationFailed, require_worker, run, timeout_seconds
    from definitions import registry

    try:
        arg = build()
    except (*refusals, registry.DefinitionError) as err:
        raise ValidationFailed(str(err)) from None

    async def work(client):
        import importlib
        from datetime import timedelta

        from worker.connect import task_queue

        await require_worker(client, task_queue())
        begin = starter or getattr(importlib.import_module(ops_module), start)
        return await begin(client, arg, task_queue(), rpc_timeout=timedelta(seconds=timeout_seconds()),
                           idempotency_key=idempotency_key)

    return run(work)


def label_width(rows: list[tuple[str, str]]) -> int:
    """Labels line up, and a long one (`sla response`) never runs into its value."""
    return max([11, *(len(label) + 1 for label, _ in rows)])


def timeline_card(status, rows: list[tuple[str, str]]) -> str:
    """`show` of a process with an events timeline: title line, rows, timeline, notices."""
    from cli.common import short_time
    from workflows.incident_models import TIMELINE_HEAD

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


def list_command(group: click.Group, process: str, plural: str) -> None:
    """Register `list [--state S] [--limit N] [--json]` for one process."""

    def callback(state, limit, as_json):
        from cli.runs import list_runs

        list_runs(process, state, limit, as_json)

    group.add_command(click.Command("list", callback=callback, help=f"List {plural}, newest first.", params=[
        click.Option(["--state"], help=f"Only {plural} in this state."),
        click.Option(["--limit"], default=50, show_default=True),
        click.Option(["--json", "as_json"], is_flag=True, help="Machine-readable JSON output."),
    ]))


def show_command(group: click.Group, id_name: str, models: str, status: str, formatter, help_text: str) -> None:
    """Register `show ID [--json]`: the run's status (queried, or its result once closed)."""

    def callback(as_json, **values):
        import importlib

        from cli.common import show_status

        show_status(values[id_name], getattr(importlib.import_module(models), status), as_json, formatter)

    group.add_command(click.Command("show", callback=callback, help=help_text, params=[
        click.Argument([id_name]), click.Option(["--json", "as_json"], is_flag=True,
                                                help="Machine-readable JSON output."),
    ]))
