"""`itsm demo` (the demo itself is cli/demo.py, imported when it runs)."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--keep-server/--stop-server", default=True, show_default=True,
              help="Leave an embedded server the demo started running (to browse the UI).")
def demo_cmd(keep_server: bool) -> None:
    """Run every process end to end as the sample users, with timelines."""
    from cli.demo import run_demo

    run_demo(keep_server)
