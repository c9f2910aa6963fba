"""What people see is safe (issue 14): terminal escapes and bidi overrides in anything a run
holds are printed spelled out, audit CSV cells never run as formulas, and output files are
never written into a missing folder or over an existing file without --force."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from itsmflow.app.audit_export import COLUMNS, render

HOSTILE = "\x1b]8;;http://evil.example\x07click me\x1b]8;;\x07 \x1b[2J\rsafe \u202eevil\u202c \x9b31m"
UNSAFE = ("\x1b", "\x07", "\r", "\u202e", "\u202c", "\x9b")


def itsm(*args: str, **env: str) -> subprocess.CompletedProcess:
    variables = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1", "ITSM_TIMEOUT": "1", **env}
    return subprocess.run([sys.executable, "-m", "cli.fast", *args], capture_output=True, text=True,
                          env=variables, timeout=60)


async def test_escapes_in_a_title_are_spelled_out_in_list_and_show(live, task_queue):
    """A raw client sets the memo title the UI and `runs list` show: nothing reaches a terminal raw,
    on the full path and on the lean `runs show` path, in text and in JSON."""
    from definitions import registry
    from itsmflow.app.change_submit import build_change
    from itsmflow.app.ids import new_id
    from workflows.search_attributes import typed

    now = await live.get_current_time()
    change = build_change(change_id=new_id("CHG"), title="plain", cis=["web-01"], change_type="normal",
                          start=now + timedelta(hours=1), end=now + timedelta(hours=2), requested_by="alice",
                          now=now, policy=registry.get("acme-demo"))
    await live.client.start_workflow("ChangeWorkflow", change, id=change.id, task_queue=task_queue,
                                     memo={"title": HOSTILE}, search_attributes=typed({"ItsmProcess": "change"}))
    address = live.client.service_client.config.target_host
    env = {"TEMPORAL_ADDRESS": address, "ITSM_HTTP_ADDRESS": f"127.0.0.1:{live.server.http_port}"}
    try:
        for _ in range(20):
            listed = await asyncio.to_thread(itsm, "runs", "list", "--process", "change", "--limit", "500", **env)
            if change.id in listed.stdout:
                break
            await asyncio.sleep(0.5)
        outputs = [listed] + [await asyncio.to_thread(itsm, *args, **env) for args in (
            ("runs", "show", change.id), ("runs", "show", change.id, "--json"),
            ("runs", "list", "--json", "--limit", "500"))]
    finally:
        await live.client.get_workflow_handle(change.id).terminate("test finished")
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert not any(char in result.stdout for char in UNSAFE), result.args
        assert "\\u001b]8;;http://evil.example\\u0007click me" in result.stdout
    shown = json.loads(outputs[2].stdout)
    assert shown["title"] == HOSTILE  # JSON keeps the meaning: the escapes are JSON's own
    assert any(row.get("title") == HOSTILE for row in json.loads(outputs[3].stdout))


def test_audit_csv_cells_never_run_as_formulas():
    rows = [dict.fromkeys(COLUMNS, "") | {"actor": '=HYPERLINK("http://evil.example","x")', "details": "+1+1",
                                          "action": "-2", "policy": "@SUM(A1)", "id": "\tx", "verified": True},
            dict.fromkeys(COLUMNS, "") | {"details": "a = b", "verified": False}]
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert [parsed[0][c] for c in ("actor", "details", "action", "policy", "id", "verified")] == [
        '\'=HYPERLINK("http://evil.example","x")', "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "true"]
    assert (parsed[1]["details"], parsed[1]["verified"]) == ("a = b", "false")


@pytest.mark.parametrize("args, option", [
    (("audit", "export", "CHG-20300101-AAAA", "--format", "csv", "--out"), "--out"),
    (("report", "kpis", "--html"), "--html"),
])
def test_output_files_need_a_folder_and_force_to_overwrite(tmp_path, args, option):
    missing = tmp_path / "nowhere" / "out.file"
    result = itsm(*args, str(missing))
    assert (result.returncode, result.stderr) == (
        2, f"itsm: {option} {missing}: folder {missing.parent} does not exist\n")
    existing = tmp_path / "kept.file"
    existing.write_text("precious")
    result = itsm(*args, str(existing))
    assert (result.returncode, result.stderr) == (2, f"itsm: {option} {existing} exists: add --force to overwrite it\n")
    assert existing.read_text() == "precious"
    forced = itsm(*args, str(existing), "--force")
    assert forced.returncode == 1 and "cannot reach Temporal" in forced.stderr  # it went on to ask the server
