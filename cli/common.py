"""Shared CLI plumbing: exit codes, one-line errors, options, output, the client.

Exit codes (CONTRACT): 0 success; 2 usage or validation error, including a refusal by an
update validator and an unknown id; 1 environment trouble (server unreachable, no worker,
timeout). Temporal is imported lazily so `--help` and validation errors stay fast."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import click

from itsmflow.app.formats import first_line as _first_line
from itsmflow.app.formats import iso_utc, short_time  # noqa: F401  (the CLI's, re-exported)
from itsmflow.app.lean import ui_link  # noqa: F401  (one definition, usable without click)


class FullHelpGroup(click.Group):
    """`-h` gives each command's whole first sentence, wrapped, never cut with "..."."""

    def format_commands(self, ctx, formatter) -> None:
        rows = [(name, command.get_short_help_str(limit=1000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class LazyGroup(FullHelpGroup):
    """A group whose commands are imported when named (click's pattern for lazily loaded
    subcommands), so `itsm change ...` loads cli/change.py alone. `lazy_subcommands` maps a
    command's name to its import path, `module.attribute`."""

    def __init__(self, *args: Any, lazy_subcommands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return super().list_commands(ctx) + sorted(self.lazy_subcommands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._lazy_load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _lazy_load(self, cmd_name: str) -> click.Command:
        import importlib

        import_path = self.lazy_subcommands[cmd_name]
        module_name, _, attribute = import_path.rpartition(".")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise ValueError(f"lazy loading of {import_path} returned a non-command object")
        return command


class ValidationFailed(click.ClickException):
    exit_code = 2


class EnvironmentTrouble(click.ClickException):
    exit_code = 1


def timeout_seconds() -> float:
    return float(os.environ.get("ITSM_TIMEOUT", "20"))


def address() -> str:
    return os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")




def quiet_runtime() -> None:
    """SDK core logs only errors in CLI processes (no warnings on stderr); a runtime the
    worker configured (metrics) stays."""
    from worker.telemetry import configure_runtime

    configure_runtime(replace=False)


async def client(channel: str | None = "cli"):
    """A client for the CLI's commands: people act through channel `cli` (the worker's own
    client names none)."""
    import asyncio

    from worker.auth import AuthConfigError
    from worker.codec import CodecKeyError
    from worker.connect import connect

    quiet_runtime()
    try:
        return await asyncio.wait_for(connect(channel), timeout_seconds())
    except CodecKeyError as err:
        raise EnvironmentTrouble(str(err)) from None
    except AuthConfigError as err:
        raise ValidationFailed(str(err)) from None
    except (asyncio.TimeoutError, RuntimeError) as err:
        raise EnvironmentTrouble(f"cannot reach Temporal at {address()}: {_first_line(err) or 'timed out'}") from None


def translate(err: BaseException, subject: str | None = None) -> click.ClickException | None:
    """Map Temporal errors to one-line CLI errors with the right exit code."""
    import asyncio

    from temporalio.client import (
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
    )
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError, RPCStatusCode

    from itsmflow.app.ops import InputRefused, StartRefused, Unread

    if isinstance(err, (StartRefused, InputRefused)):
        return ValidationFailed(str(err))
    if isinstance(err, Unread):
        return EnvironmentTrouble(str(err))
    no_worker = f"no worker answered in {timeout_seconds():.0f}s; is `itsm worker` running?"
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else _first_line(cause or err)
        return ValidationFailed(message)
    if isinstance(err, (WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError)):
        return EnvironmentTrouble(no_worker)
    if isinstance(err, WorkflowQueryFailedError):
        return EnvironmentTrouble(f"query failed: {_first_line(err)}")
    if isinstance(err, RPCError):
        message = _first_line(err)
        if err.status == RPCStatusCode.NOT_FOUND:
            if "already completed" in message:
                return ValidationFailed(f"{subject} is already closed")
            return ValidationFailed(f"no such id {subject!r}" if subject else message)
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            return ValidationFailed(message)
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return EnvironmentTrouble(no_worker)
        if err.status == RPCStatusCode.UNAVAILABLE:
            return EnvironmentTrouble(f"cannot reach Temporal at {address()}: {message}")
        return EnvironmentTrouble(f"Temporal error: {message}")
    return None


def run(work: Callable[..., Awaitable[Any]], *args, subject: str | None = None) -> Any:
    """Run `work(client, *args)` with a client; Temporal errors become one-line errors."""
    import asyncio

    async def main():
        temporal = await client()
        try:
            return await asyncio.wait_for(work(temporal, *args), timeout_seconds() + 5)
        except click.ClickException:
            raise
        except Exception as err:
            from itsmflow.app.ops import StartedWaiting

            if isinstance(err, StartedWaiting):  # its id on stdout: the run exists, do not start it again
                click.echo(err.run_id)
                raise EnvironmentTrouble(str(err)) from None
            translated = translate(err, subject)
            if translated is None:
                raise
            raise translated from None

    return asyncio.run(main())


class ProcessName(click.ParamType):
    """A loaded process's name, checked when given (the declarations load then, not for -h)."""

    name = "process"

    def convert(self, value, param, ctx):
        from itsmflow.processes import named

        try:
            return named(value).name
        except LookupError as err:
            self.fail(str(err), param, ctx)


def parse_time(value: str | None, name: str) -> datetime | None:
    """ISO-8601 with an offset, `now`, or `+<duration>` from now in the definitions' spelling
    (`+30m`, `+2h`, `+1d`)."""
    if value is None:
        return None
    if value == "now":
        return datetime.now(timezone.utc)
    if value.startswith("+"):
        from datetime import timedelta

        from definitions.base import parse_duration

        ahead = parse_duration(value[1:])
        if not isinstance(ahead, timedelta):
            raise ValidationFailed(f"{name}: {value!r} is not a time from now (e.g. +30m, +2h, +1d)")
        return datetime.now(timezone.utc) + ahead
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{name}: {value!r} is not an ISO-8601 time (e.g. 2026-11-24T22:00+00:00), "
                               "'now' or '+2h'") from None
    if moment.tzinfo is None:
        raise ValidationFailed(f"{name}: {value!r} needs a UTC offset (e.g. +00:00 or Z)")
    return moment


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


actor_option = click.option(
    "--as", "actor", envvar="ITSM_USER", required=True, metavar="USER",
    help="Acting user (or ITSM_USER).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
idempotency_option = click.option(
    "--idempotency-key", metavar="KEY",
    help="Start once: repeating the command with the same KEY (within a day) returns the same run.")


def to_json_model(model) -> Any:
    """Pydantic model → JSON-ready data with UTC ISO times."""
    from itsmflow.app.cards import utc

    return utc(model.model_dump(mode="json"))



def exit_now(code: int) -> None:
    """Flush and leave without interpreter teardown (temporalio can crash there: sdk-python#300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_update(run_id: str, name: str, arg, result_type: type, as_json: bool) -> None:
    """Send a validated update; print `ID new-state` (or the JSON status)."""
    from worker.bounds import update_refusal

    refusal = update_refusal([arg])  # before connecting: nothing is sent
    if refusal:
        raise ValidationFailed(refusal)

    async def work(temporal):
        from datetime import timedelta

        from itsmflow.app import ops

        return await ops.update(temporal, run_id, name, arg, result_type,
                                rpc_timeout=timedelta(seconds=timeout_seconds()))

    status = run(work, subject=run_id)
    if as_json:
        emit_json(to_json_model(status))
    else:
        click.echo(f"{status.id} {getattr(status.state, 'value', status.state)}")


def show_status(run_id: str, result_type: type, as_json: bool, formatter) -> None:
    """`show`: live when a worker answers, else the status the run published, with its time
    and why it may be stale (JSON: `as_of` and `stale`)."""
    async def work(temporal):
        from itsmflow.app import ops

        return await ops.read(temporal, run_id, result_type)

    read = run(work, subject=run_id)
    if as_json:
        emit_json(read_json(read))
        return
    echo_read(read, formatter(read.status))


def read_json(read, **more) -> dict:
    """A read's JSON: the status, and `as_of` and `stale` when it did not come live."""
    return {**to_json_model(read.status), **more, **({"as_of": read.as_of, "stale": read.stale} if read.stale else {})}


def echo_read(read, text: str) -> None:
    """A read for people: its text, its UI link, and as of when it may be stale."""
    click.echo(text)
    click.echo(f"  {'ui':<11}{ui_link(read.status.id)}")
    if read.stale:
        click.echo(f"  {'as of':<11}{short_time(read.as_of)}, may be stale: {read.stale}")


async def require_worker(client, queue: str) -> None:
    """Refuse to start a run nobody will execute: nothing half-started."""
    from itsmflow.app.ops import worker_polls

    if not await worker_polls(client, queue):
        raise EnvironmentTrouble(f"no worker is polling task queue {queue!r}; start one with `itsm worker`")


force_option = click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")


def check_output_file(path: str, force: bool, option: str) -> None:
    """Before any work: the folder must exist, and an existing file is kept unless --force."""
    from pathlib import Path

    target = Path(path)
    if not target.parent.is_dir():
        raise ValidationFailed(f"{option} {path}: folder {target.parent} does not exist")
    if target.is_dir():
        raise ValidationFailed(f"{option} {path} is a folder")
    if target.exists() and not force:
        raise ValidationFailed(f"{option} {path} exists: add --force to overwrite it")


def write_output_file(path: str, text: str, force: bool, option: str) -> None:
    try:
        with open(path, "w" if force else "x", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except FileExistsError:
        raise ValidationFailed(f"{option} {path} exists: add --force to overwrite it") from None
    except OSError as err:
        raise EnvironmentTrouble(f"cannot write {path}: {err.strerror}") from None
