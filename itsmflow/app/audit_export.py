"""`itsm audit export`: every human and system action of the selected runs, read from
their Temporal histories (the system of record), as JSON lines or CSV for auditors.

Refused calls (validator rejections) never reach history, so they are never actions."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

COLUMNS = ["time", "actor", "channel", "process", "id", "action", "details", "policy", "verified"]


def _record(row: dict, run_id: str) -> dict:
    from itsmflow.app.formats import iso_utc
    from itsmflow.app.ids import process_of

    return {"time": iso_utc(row["time"]), "actor": row["actor"], "channel": row.get("channel", ""),
            "process": process_of(run_id) or "",
            "id": run_id, "action": row["action"], "details": row["details"], "policy": row.get("policy", ""),
            "verified": bool(row.get("verified"))}


async def export_rows(client, run_id: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, process: str | None = None) -> list[dict]:
    """Rows of one run (and its children) or of every run active in [since, until),
    in time order."""
    import asyncio

    from itsmflow.app.audit import audit_rows, audit_trail
    from itsmflow.app.queries import window_query

    if run_id:
        rows = await audit_trail(client, run_id)
    else:
        executions = [e async for e in client.list_workflows(window_query(since, until, process))]
        limit = asyncio.Semaphore(16)

        async def one(execution) -> list[dict]:
            async with limit:
                history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
                try:
                    return [{**row, "run": execution.id} for row in await audit_rows(client, history)]
                except Exception as err:  # noqa: BLE001 (skip a run this key cannot read, and say so)
                    from itsmflow.app.formats import first_line as _first_line

                    started = max(execution.start_time, since) if since else execution.start_time
                    return [{"time": started, "actor": "system", "action": "undecodable",
                             "details": f"cannot decode this run: {_first_line(err)}", "run": execution.id,
                             "policy": ""}]

        rows = [row for chunk in await asyncio.gather(*(one(e) for e in executions)) for row in chunk]
    rows = [r for r in rows if (since is None or r["time"] >= since) and (until is None or r["time"] < until)]
    return [_record(r, r["run"]) for r in sorted(rows, key=lambda r: (r["time"], r["run"]))]


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: inert_cell(value) for key, value in row.items()} for row in rows)
    return out.getvalue()


def inert_cell(value):
    """A cell a spreadsheet will not run (OWASP CSV injection): text that starts like a formula
    gets a leading apostrophe; `verified` reads true or false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
