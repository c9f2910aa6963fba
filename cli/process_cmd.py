"""`itsm process list|start|do|show`: any declared process, built-in or a package's."""

from __future__ import annotations

import click

from cli.common import (
    FullHelpGroup,
    ValidationFailed,
    actor_option,
    echo_read,
    emit_json,
    idempotency_option,
    json_option,
    read_json,
    run,
    to_json_model,
)

field_option = click.option("--field", "fields", multiple=True, metavar="NAME=VALUE",
                            help="A field of the input (repeatable); JSON for non-text fields, a definition's name "
                                 "for a definition.")


@click.group("process", cls=FullHelpGroup)
def process_group() -> None:
    """Every declared process: list them, start one, act on a run, show it."""


@process_group.command("list")
@json_option
def list_cmd(as_json):
    """Each process with its id prefix and human actions; exit 2 if one failed to load."""
    from itsmflow.processes import load

    loaded = load()
    if as_json:
        emit_json({"processes": [{
            "name": p.name, "prefix": p.prefix, "workflow": p.workflow_type, "description": p.description,
            "states": list(p.states), "final": p.final,
            "actions": [{"name": a.name, "update": a.update, "who": a.who, "one_click": a.one_click}
                        for a in p.actions]} for p in loaded.processes], "problems": list(loaded.problems)})
    else:
        width = max([12, *(len(p.name) + 1 for p in loaded.processes)])
        for p in loaded.processes:
            click.echo(f"{p.name:<{width}} {p.prefix:<5} {', '.join(a.name for a in p.actions) or '-'}")
    for problem in loaded.problems:
        click.echo(f"itsm: {problem}", err=True)
    if loaded.problems:
        raise click.exceptions.Exit(2)


def _input(fields: tuple[str, ...], input_file: str | None) -> dict:
    import json

    from itsmflow.app.generic import InputError, parse_fields

    values: dict = {}
    if input_file:
        try:
            with open(input_file, encoding="utf-8") as handle:
                values = json.load(handle)
        except (OSError, ValueError) as err:
            raise ValidationFailed(f"--input {input_file}: {err}") from None
        if not isinstance(values, dict):
            raise ValidationFailed(f"--input {input_file}: expected a JSON object")
    try:
        return {**values, **parse_fields(fields)}
    except InputError as err:
        raise ValidationFailed(str(err)) from None


@process_group.command("start")
@click.argument("name")
@field_option
@click.option("--input", "input_file", metavar="FILE", help="The input as a JSON object (fields override it).")
@idempotency_option
@actor_option
@json_option
def start_cmd(name, fields, input_file, idempotency_key, actor, as_json):
    """Start a run of process NAME; prints its id once it waits on people or time."""
    from cli.commands import start_command
    from itsmflow.app import generic as app

    values = _input(fields, input_file)
    try:
        process = app.named(name)
    except LookupError as err:
        raise ValidationFailed(str(err)) from None

    async def starter(client, arg, queue, rpc_timeout=None, idempotency_key=None):
        return await app.start(client, process, arg, queue, rpc_timeout, idempotency_key)

    arg = start_command(lambda: app.build_start(process, values, actor), (app.InputError,), starter, idempotency_key)
    if as_json:
        emit_json(to_json_model(arg))
    else:
        click.echo(arg.id)


@process_group.command("do")
@click.argument("run_id")
@click.argument("action")
@field_option
@actor_option
@json_option
def do_cmd(run_id, action, fields, actor, as_json):
    """Do ACTION on run RUN_ID as a user; prints `ID new-state` (or the JSON status)."""
    from cli.common import run_update
    from itsmflow.app import generic as app
    from itsmflow.process import resolve

    values = _input(fields, None)
    try:
        process, declared = app.action_of(run_id, action)
        arg = app.build_action(process, declared, values, actor)
    except app.InputError as err:
        raise ValidationFailed(str(err)) from None
    run_update(run_id, declared.update, arg, resolve(process.status), as_json)


@process_group.command("show")
@click.argument("run_id")
@json_option
def show_cmd(run_id, as_json):
    """The run's state and details, live or (no worker) as last published."""
    from itsmflow.app import generic as app

    try:
        process = app.process_of_run(run_id)
    except app.InputError as err:
        raise ValidationFailed(str(err)) from None

    async def work(client):
        return await app.read(client, run_id)

    read = run(work, subject=run_id)
    if as_json:
        emit_json(read_json(read))
    else:
        echo_read(read, app.show_text(process, read.status))
