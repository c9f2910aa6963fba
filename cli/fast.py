"""The `itsm` entry point. The reads people run most are answered from the server's HTTP API
with the standard library alone (no click, no temporalio, no pydantic), when the lean path
can answer exactly what the full click application would:

    itsm runs show ID [--json]                       itsmflow/app/lean.py (describe)
    itsm change|incident|problem|request|process show ID [--json]
    itsm change|incident|problem|request list [--state S] [--limit N] [--priority P] [--json]
    itsm runs list [--process P] [--state S] [--limit N] [--json]
                                                     itsmflow/app/lean_read.py (memo, query, visibility)

Every other call, any option it does not know (`-h`, a repeated option, a value the full
path would refuse), and every case the lean path declines go to the full application,
which answers as it always has."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from itsmflow.app.lean_read import LeanRead

_SHOW = ("change", "incident", "problem", "request", "process")
_LIST_OPTIONS = {"change": ("--state", "--limit"), "problem": ("--state", "--limit"),
                 "request": ("--state", "--limit"), "incident": ("--state", "--limit", "--priority"),
                 "runs": ("--process", "--state", "--limit")}
# click.echo strips ANSI CSI sequences from what it writes to anything but a terminal (click's
# own pattern); the lean path prints what the full path prints, so it does the same.
_ANSI = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")
# What makes the lean path leave a command to the full path: it declined (itsmflow.app.lean
# Declined is a ValueError), or the server's answer was not shaped as it expects. Nothing has
# been printed then.
UNEXPECTED = (ValueError, KeyError, TypeError, IndexError, AttributeError)


def main() -> None:
    from cli.safe_output import install

    install()  # nothing printed for people carries terminal escapes or bidi overrides
    code = lean(sys.argv[1:])
    if code is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    from cli.main import main as full

    full()


def lean(args: list[str]) -> int | None:
    """Answer `args` on the lean path: the exit code, or None for the full path."""
    noun, verb, rest = (args[0], args[1], args[2:]) if len(args) >= 2 else ("", "", [])
    if verb == "show" and (noun in _SHOW or noun == "runs"):
        shown = _show_arguments(rest)
        if shown is None:
            return None
        return _runs_show(*shown) if noun == "runs" else _show(noun, *shown)
    if verb == "list" and noun in _LIST_OPTIONS:
        options = _list_arguments(rest, _LIST_OPTIONS[noun])
        return None if options is None else _list(noun, options)
    return None


def _show_arguments(rest: list[str]) -> tuple[str, bool] | None:
    """(id, --json) from `ID [--json]` in either order, else None."""
    ids = [arg for arg in rest if arg != "--json"]
    if len(ids) != 1 or ids[0].startswith("-") or len(rest) - len(ids) > 1:
        return None
    return ids[0], len(rest) == 2


def _list_arguments(rest: list[str], known: tuple[str, ...]) -> dict[str, Any] | None:
    """The options of a `list` as the full path would take them, or None when it might take them
    otherwise (an unknown or repeated option, a value it refuses: the full path says so)."""
    options: dict[str, Any] = {}
    tokens = list(rest)
    while tokens:
        token = tokens.pop(0)
        name, equals, value = token.partition("=")
        if token == "--json" and "--json" not in options:
            options["--json"] = True
            continue
        if name not in known or name in options or (not equals and not tokens):
            return None
        options[name] = value if equals else tokens.pop(0)
    state, limit, priority = options.get("--state"), options.get("--limit", "50"), options.get("--priority")
    if state is not None and not (state and state.replace("_", "").replace("-", "").isalnum()):
        return None
    if not (limit.isascii() and limit.isdigit()) or priority not in (None, "P1", "P2", "P3", "P4"):
        return None
    return {"process": options.get("--process"), "state": state, "limit": int(limit), "priority": priority,
            "json": options.get("--json", False)}


def _show(noun: str, run_id: str, as_json: bool) -> int | None:
    from itsmflow.app import lean_read

    try:
        read = lean_read.read(run_id, None if noun == "process" else noun)
        items = lean_read.items(read.status) if noun == "request" else None
        text = show_text(read, items, as_json, lean_read.declared(run_id)["card"])
    except lean_read.NotFound:
        _echo(f"itsm: no such id {run_id!r}", err=True)
        return 2
    except UNEXPECTED:
        return None
    _echo(text)
    return 0


def show_text(read: LeanRead, items: list[dict[str, Any] | None] | None, as_json: bool, card: str) -> str:
    """What `show` prints for a read: its `card` (itsmflow/app/cards.py), or with `items`,
    `request show`'s (each item's status, or None while it has none)."""
    import json

    from itsmflow.app import cards
    from itsmflow.app.lean import ui_link

    status, stale = read.status, ({"as_of": read.as_of, "stale": read.stale} if read.stale else {})
    if as_json:
        listed = {} if items is None else {"items": [ref if item is None else cards.utc(item)
                                                     for ref, item in zip(status["items"], items)]}
        return json.dumps({**cards.utc(status), **listed, **stale}, indent=2, default=str)
    if items is not None:
        return "\n".join(cards.request_lines(status, items, ui_link(status["id"]), read.as_of, read.stale))
    drawn = cards.CARDS[card](status)
    return "\n".join(cards.read_lines(drawn, ui_link(status["id"]), read.as_of, read.stale))


def _runs_show(run_id: str, as_json: bool) -> int | None:
    from itsmflow.app import lean

    info = lean.describe(run_id)
    if info is lean.NOT_FOUND:
        _echo(f"itsm: no such id {run_id!r}", err=True)
        return 2
    if info is None:
        return None
    _echo(lean.format_run(info | {"ui": lean.ui_link(run_id)}, as_json))
    return 0


def _list(noun: str, options: dict[str, Any]) -> int | None:
    from itsmflow.app import lean_read

    process = options["process"] if noun == "runs" else noun
    try:
        column = lean_read.column(process)
        rows = lean_read.list_rows(process, options["state"], options["limit"], options["priority"])
        text, err = list_text(rows, column, options["json"])
    except UNEXPECTED:
        return None
    _echo(text, err=err)
    return 0


def list_text(rows: list[dict[str, Any]], column: str | None, as_json: bool) -> tuple[str, bool]:
    """What `list` prints, and whether it goes to stderr (`no runs`)."""
    import json

    from itsmflow.app import cards

    if as_json:
        return json.dumps(rows, indent=2, default=str), False
    if not rows:
        return "no runs", True
    return "\n".join(cards.runs_table(rows, column)), False


def _echo(text: str, err: bool = False) -> None:
    """Write a line as click.echo writes it (what the full path prints with)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n" if stream.isatty() else _ANSI.sub("", text + "\n"))
    stream.flush()


if __name__ == "__main__":
    main()
