"""The `itsm` command. Exit codes: 0 ok, 2 usage/validation (incl. refused updates and
unknown ids), 1 environment trouble. Errors are one line on stderr, never a traceback."""

from __future__ import annotations

import click

from cli.audit_cmd import audit_group
from cli.auth_cmd import auth_group
from cli.change import change_group
from cli.common import FullHelpGroup
from cli.definitions_cmd import definitions_group
from cli.incident import incident_group
from cli.problem import problem_group
from cli.process_cmd import process_group
from cli.report_cmd import report_group
from cli.request import catalog_group, request_group, task_group
from cli.runs import runs_group
from cli.server_cmd import codec_server_cmd, dev_cmd, server_group, worker_cmd


@click.group(cls=FullHelpGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


for command in (change_group, incident_group, problem_group, request_group, catalog_group, task_group, process_group,
                runs_group, definitions_group, server_group, worker_cmd, codec_server_cmd, dev_cmd, demo_cmd,
                auth_group,
                audit_group, report_group):
    itsm.add_command(command)


def one_line(message: str) -> str:
    """User input echoed in an error must not break the one-line promise."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message.strip())


def _error(message: str) -> None:
    click.echo(one_line(message), err=True)


def run_cli(args: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code. Errors are printed as one line on stderr."""
    try:
        returned = itsm.main(args, prog_name="itsm", standalone_mode=False)
        return returned if isinstance(returned, int) else 0
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as err:
        where = f"{err.ctx.command_path}: " if err.ctx else "itsm: "
        _error(f"{where}{err.format_message()}")
        return 2
    except click.ClickException as err:
        _error(f"itsm: {err.format_message()}")
        return err.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        _error("itsm: interrupted")
        return 130
    except Exception as err:  # a bug, not a user mistake: still one line, exit 1
        _error(f"itsm: internal error: {type(err).__name__}: {err}")
        return 1


def main() -> None:
    from cli.common import exit_now
    from cli.safe_output import install

    install()

    exit_now(run_cli())


if __name__ == "__main__":
    main()
