"""`itsm audit export`."""

from __future__ import annotations

import click

from cli.common import FullHelpGroup, ProcessName, force_option


@click.group("audit", cls=FullHelpGroup)
def audit_group() -> None:
    """Audit evidence from the runs' own histories."""


def parse_day_or_time(value: str | None, name: str):
    """YYYY-MM-DD (a UTC day) or an ISO-8601 time with offset."""
    from datetime import date, datetime, timezone

    from cli.common import parse_time

    if value and len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc)
        except ValueError:
            pass
    return parse_time(value, name)


@audit_group.command("export")
@click.argument("run_id", required=False)
@click.option("--since", help="Actions from this UTC day (YYYY-MM-DD) or ISO time on.")
@click.option("--until", help="Actions before this day or time.")
@click.option("--process", type=ProcessName(), help="Only this process (with --since).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--out", metavar="FILE", help="Write to FILE instead of stdout.")
@force_option
def export_cmd(run_id, since, until, process, fmt, out, force):
    """Every human and system action (time, actor, process, id, action, details, policy,
    verified) of run ID and its children, or of every run active since --since."""
    from cli.common import ValidationFailed, check_output_file, run, write_output_file
    from itsmflow.app.audit_export import export_rows, render

    if out:
        check_output_file(out, force, "--out")
    if not run_id and not since:
        raise ValidationFailed("give a run ID or --since DATE")
    if run_id and process:
        raise ValidationFailed("--process applies to --since, not to one run")
    low, high = parse_day_or_time(since, "--since"), parse_day_or_time(until, "--until")
    if low and high and high <= low:
        raise ValidationFailed("--until must be after --since")
    rows = run(lambda client: export_rows(client, run_id, low, high, process), subject=run_id)
    text = render(rows, fmt)
    if out:
        write_output_file(out, text, force, "--out")
        click.echo(f"{len(rows)} actions written to {out}", err=True)
    else:
        click.echo(text, nl=False)
