"""`itsm report kpis`: service-management KPIs read from Temporal visibility alone (search
attributes), so it works with no worker running and counts open runs."""

from __future__ import annotations

import click

from cli.common import FullHelpGroup, force_option, json_option


@click.group("report", cls=FullHelpGroup)
def report_group() -> None:
    """Reports over many runs, from their search attributes."""


@report_group.command("kpis")
@click.option("--since", metavar="DATE", help="Runs opened from this UTC day (YYYY-MM-DD) or ISO time on "
                                              "[default: 30 days before --until].")
@click.option("--until", metavar="DATE", help="Runs opened before this day or time; the backlog is as of it "
                                              "[default: now].")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one metric per row: metric, dimension, value.")
@click.option("--html", "html_file", metavar="FILE", help="Write a self-contained HTML report with charts to FILE.")
@force_option
def kpis_cmd(since, until, as_json, as_csv, html_file, force):
    """MTTA and MTTR per priority, response and resolution SLA compliance, change success
    rate and emergency share, request fulfillment time p50/p90, backlog by state and age,
    incidents opened and resolved per day."""
    from datetime import datetime, timezone

    from cli.audit_cmd import parse_day_or_time
    from cli.common import ValidationFailed, check_output_file, emit_json, run, write_output_file
    from itsmflow.app.kpi_source import fetch_runs
    from itsmflow.app.kpis import compute, default_window

    if sum(map(bool, (as_json, as_csv, html_file))) > 1:
        raise ValidationFailed("choose one of --json, --csv and --html")
    if html_file:
        check_output_file(html_file, force, "--html")
    low, high = default_window(parse_day_or_time(since, "--since"), parse_day_or_time(until, "--until"),
                               datetime.now(timezone.utc))
    if high <= low:
        raise ValidationFailed("--until must be after --since")
    report = compute(run(lambda client: fetch_runs(client, low, high)), low, high)
    if as_json:
        emit_json(report)
    elif as_csv:
        from itsmflow.app.kpi_render import render_csv

        click.echo(render_csv(report), nl=False)
    elif html_file:
        from itsmflow.app.kpi_html import render_html

        write_output_file(html_file, render_html(report), force, "--html")
        click.echo(f"KPI report written to {html_file}", err=True)
    else:
        from itsmflow.app.kpi_render import render_text

        click.echo(render_text(report), nl=False)
