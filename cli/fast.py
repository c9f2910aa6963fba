"""The `itsm` entry point. `itsm runs show ID [--json]` is answered from the server's HTTP
API with the standard library alone (no click, no temporalio: ~25 ms), when itsmflow/app/lean.py can
answer it exactly; every other call, and every case the lean path declines, goes to the
full click application."""

from __future__ import annotations

import os
import sys


def main() -> None:
    from cli.safe_output import install

    install()  # nothing printed for people carries terminal escapes or bidi overrides
    args = sys.argv[1:]
    lean_call = args[:2] == ["runs", "show"] and len(args) in (3, 4) and not args[2].startswith("-")
    if lean_call and args[3:] in ([], ["--json"]):
        from itsmflow.app import lean

        info = lean.describe(args[2])
        if info is lean.NOT_FOUND:
            sys.stderr.write(f"itsm: no such id {args[2]!r}\n")
            sys.stderr.flush()
            os._exit(2)
        if info is not None:
            sys.stdout.write(lean.format_run(info | {"ui": lean.ui_link(args[2])}, "--json" in args) + "\n")
            sys.stdout.flush()
            os._exit(0)
    from cli.main import main as full

    full()


if __name__ == "__main__":
    main()
