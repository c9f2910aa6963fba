"""The application layer for any declared process: build a start input or an action's
argument from `name=value` fields, typed and validated by the declared models; start, act and
read through Temporal. The CLI (`itsm process ...`) and the coming HTTP service call this; the
noun commands (`itsm change approve`, ...) are friendlier faces over the same declarations."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from itsmflow.process import Action, Process, resolve
from itsmflow.processes import named, of_id

if TYPE_CHECKING:  # pydantic loads when a model is validated, not with the declarations
    from pydantic import BaseModel

Model = TypeVar("Model", bound="BaseModel")


class InputError(ValueError):
    """A field is unknown, missing or invalid: one line, nothing was sent."""


def parse_fields(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--field {pair!r}: expected NAME=VALUE")
        fields[name.strip()] = value
    return fields


def _typed(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """Text as the model's field types want it: a `str` field keeps the text; others take JSON
    (`3`, `true`, `["a"]`) or, when it is not JSON, the text itself (pydantic then decides).
    A field typed as a definition kind takes a definition's name, snapshotted here."""
    from definitions import registry

    known = model.model_fields
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)} (fields: {', '.join(known)})")
    kinds = tuple(registry.kinds().values())
    out: dict[str, Any] = {}
    for name, value in fields.items():
        annotation = known[name].annotation
        if isinstance(annotation, type) and issubclass(annotation, kinds) and isinstance(value, str):
            try:
                out[name] = registry.get(value, annotation)
            except registry.DefinitionError as err:
                raise InputError(f"{name}: {err}") from None
        elif annotation is str or not isinstance(value, str):
            out[name] = value
        else:
            try:
                out[name] = json.loads(value)
            except ValueError:
                out[name] = value
    return out


def validated(model: type[Model], data: dict[str, Any]) -> Model:
    """`model` from `data`, or InputError naming the first field at fault (one line)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or model.__name__
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise InputError(f"{where}: {first['msg'].removeprefix('Value error, ')}{more}") from None


def _defaults(process: Process, model: type[BaseModel]) -> dict[str, Any]:
    """What the kit fills in: a fresh id, and every field typed as the organisation (the one
    the worker runs on, ITSM_ORG)."""
    from definitions import registry
    from definitions.org import Organisation
    from itsmflow.app.ids import new_id

    data: dict[str, Any] = {}
    if "id" in model.model_fields:
        data["id"] = new_id(process.prefix)
    for name, field in model.model_fields.items():
        if field.annotation is Organisation:
            data[name] = registry.get(os.environ.get("ITSM_ORG", "acme"), Organisation)
    return data


def build_start(process: Process, fields: dict[str, Any], actor: str | None):
    """The start input of `process` from fields (and the acting user in its starter field)."""
    model = resolve(process.input)
    data = {**_defaults(process, model), **_typed(model, fields)}
    if process.starter and actor is not None:
        data[process.starter] = actor
    return validated(model, data)


def build_action(process: Process, action: Action, fields: dict[str, Any], actor: str):
    model = resolve(action.input)
    return validated(model, {**_typed(model, fields), action.actor_field: actor})


def process_of_run(run_id: str) -> Process:
    """The loaded process a run id belongs to, or InputError."""
    process = of_id(run_id)
    if process is None:
        raise InputError(f"{run_id!r} is not the id of a loaded process's run")
    return process


def action_of(run_id: str, name: str) -> tuple[Process, Action]:
    process = process_of_run(run_id)
    action = process.action(name)
    if action is None:
        known = ", ".join(a.name for a in process.actions) or "none"
        raise InputError(f"{process.name} has no action {name!r} (actions: {known})")
    return process, action


def default_attributes(process: Process, arg) -> dict[str, Any]:
    attributes: dict[str, Any] = {"ItsmProcess": process.name, "ItsmState": process.states[0] if process.states
                                  else "new"}
    starter = getattr(arg, process.starter, None) if process.starter else None
    if isinstance(starter, str) and "ItsmRequester" in process.attributes:
        attributes["ItsmRequester"] = starter
    return attributes


async def start(client, process: Process, arg, task_queue: str, rpc_timeout: timedelta | None = None,
                idempotency_key: str | None = None):
    """Start a run of `process` and return its status once it waits on people or time."""
    from itsmflow.app import ops

    attributes = resolve(process.start_attributes) if process.start_attributes else (
        lambda value: default_attributes(process, value))
    return await ops.start_fresh(client, process.workflow_type, arg, process.prefix, task_queue=task_queue,
                                 attributes=attributes, result_type=resolve(process.status), rpc_timeout=rpc_timeout,
                                 idempotency_key=idempotency_key, title_field=process.title)


async def act(client, run_id: str, action: Action, arg, rpc_timeout: timedelta | None = None):
    from itsmflow.app import ops

    return await ops.update(client, run_id, action.update, arg, resolve(process_of_run(run_id).status), rpc_timeout)


async def read(client, run_id: str):
    """The run's status (`ops.Read`: live, or from the memo with as_of and why it may be stale)."""
    from itsmflow.app import ops

    return await ops.read(client, run_id, resolve(process_of_run(run_id).status))


def show_text(process: Process, status) -> str:
    """The process's own `show` text, or a generic card: title, state, the status's plain
    fields, and its timeline when it keeps one."""
    if process.show:
        return resolve(process.show)(status)
    from itsmflow.app.cards import generic_card

    return generic_card(status.model_dump(mode="json"))


__all__ = ["InputError", "act", "action_of", "build_action", "build_start", "named", "parse_fields",
           "process_of_run", "read",
           "show_text", "start"]
