"""The `itsm` command. Exit codes: 0 ok, 2 usage/validation (incl. refused updates and
unknown ids), 1 environment trouble. Errors are one line on stderr, never a traceback."""

from __future__ import annotations

import sys

import click

from cli.change import change_group
from cli.definitions_cmd import definitions_group
from cli.incident import incident_group
from cli.request import catalog_group, request_group, task_group
from cli.runs import runs_group
from cli.server_cmd import dev_cmd, server_group, worker_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="itsmflow")
def itsm() -> None:
    """itsmflow: durable IT service management processes on Temporal."""


@click.command("demo")
@click.option("--keep-server/--stop-server", default=True, show_default=True,
              help="Leave an embedded server the demo started running (to browse the UI).")
def demo_cmd(keep_server):
    """Run every process end to end as the sample users, with timelines."""
    from cli.demo import run_demo

    run_demo(keep_server)


for command in (change_group, incident_group, request_group, catalog_group, task_group, runs_group, definitions_group, server_group, worker_cmd, dev_cmd, demo_cmd):
    itsm.add_command(command)


def main() -> None:
    from cli.common import exit_now

    code = 0
    try:
        returned = itsm.main(standalone_mode=False)
        code = returned if isinstance(returned, int) else 0
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.UsageError as err:
        where = f"{err.ctx.command_path}: " if err.ctx else "itsm: "
        click.echo(f"{where}{err.format_message()}", err=True)
        code = 2
    except click.ClickException as err:
        click.echo(f"itsm: {err.format_message()}", err=True)
        code = err.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("itsm: interrupted", err=True)
        code = 130
    except Exception as err:  # a bug, not a user mistake: still one line, exit 1
        click.echo(f"itsm: internal error: {type(err).__name__}: {err}", err=True)
        code = 1
    exit_now(code)


if __name__ == "__main__":
    main()
    sys.exit(0)
