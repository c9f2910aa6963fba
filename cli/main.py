"""The `itsm` command. Exit codes: 0 ok, 2 usage/validation (incl. refused updates and
unknown ids), 1 environment trouble. Errors are one line on stderr, never a traceback."""

from __future__ import annotations

import click

from cli.common import LazyGroup

# Each command is a click command (decorators) in its module, imported when it is named:
# `itsm change show ...` loads cli/change.py alone (`itsm -h` loads them all for their help).
COMMANDS = {
    "audit": "cli.audit_cmd.audit_group",
    "auth": "cli.auth_cmd.auth_group",
    "catalog": "cli.request.catalog_group",
    "change": "cli.change.change_group",
    "codec-server": "cli.server_cmd.codec_server_cmd",
    "definitions": "cli.definitions_cmd.definitions_group",
    "demo": "cli.demo_cmd.demo_cmd",
    "dev": "cli.server_cmd.dev_cmd",
    "incident": "cli.incident.incident_group",
    "problem": "cli.problem.problem_group",
    "release": "cli.release.release_group",
    "process": "cli.process_cmd.process_group",
    "report": "cli.report_cmd.report_group",
    "request": "cli.request.request_group",
    "runs": "cli.runs.runs_group",
    "server": "cli.server_cmd.server_group",
    "task": "cli.request.task_group",
    "worker": "cli.server_cmd.worker_cmd",
}


@click.group(cls=LazyGroup, lazy_subcommands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="itsmflow")
def itsm() -> None:
    """itsmflow: durable IT service management processes on Temporal."""


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
