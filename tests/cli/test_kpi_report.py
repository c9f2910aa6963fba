"""`itsm report kpis` end to end on a real dev server (the time-skipping server cannot list
runs): runs driven by an in-process worker, the report read by the CLI as a subprocess
through the visibility list query, and equal to the figures computed from each run's own
description. Plus the CLI contract: bad dates exit 2, an unreachable server exits 1."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from activities.db import Database
from definitions import registry
from definitions.change import ChangeType
from itsmflow.app import change_ops, incident_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from itsmflow.app.incident_submit import build_incident
from itsmflow.app.kpi_source import fetch_runs, run_from_execution
from itsmflow.app.kpis import compute, merge
from tests.cli.test_cli_e2e import Cli
from tests.conftest import RecordingChannel
from worker.connect import connect
from worker.main import build_worker
from worker.server import DevServer, free_port, wait_until_ready
from workflows.change_models import CompleteInput, Outcome
from workflows.incident_models import AttachInput, IncidentResolveInput
from workflows.models import ActorInput

SECTIONS = ("incidents", "changes", "requests", "backlog", "trend", "excluded")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("kpi")
    dev = DevServer(port=free_port(), db=home / "temporal.db", headless=True, http_port=free_port())
    with dev.spawn(detach=False) as process:  # leaving waits for (reaps) our own child
        asyncio.run(wait_until_ready(dev.address, 60, process))
        yield dev, home
        process.terminate()


def cli_for(address: str, **env: str) -> Cli:
    return Cli({**os.environ, "TEMPORAL_ADDRESS": address, "ITSM_TIMEOUT": "5", **env})


async def drive(address: str, home) -> list[str]:
    """One incident acknowledged and resolved, one left open, one standard change closed."""
    client, queue = await connect(target_host=address), f"kpi-{uuid.uuid4()}"
    db = Database(f"sqlite:///{home / 'cmdb.sqlite3'}")
    db.migrate()
    async with build_worker(client, queue, db=db, channel=RecordingChannel()):
        fields = dict(title="lb-01 down", ci="lb-01", impact=1, urgency=1, opened_by="alice")
        answered, _ = await incident_ops.open_incident(client, build_incident(**fields), queue)
        waiting, _ = await incident_ops.open_incident(client, build_incident(**fields), queue)
        await incident_ops.update(client, answered.id, "acknowledge", ActorInput(actor="dave"))
        await incident_ops.update(client, answered.id, "resolve", IncidentResolveInput(actor="dave", code="restarted"))
        now = datetime.now(timezone.utc)
        change = await change_ops.submit(client, build_change(
            change_id=new_id("CHG", now), title="Restart web-02", cis=["web-02"], change_type=ChangeType.STANDARD,
            template="restart-web-server", start=now, end=now + timedelta(hours=1), requested_by="alice", now=now,
            policy=registry.get("acme-demo")), queue)
        await change_ops.update(client, change.id, "complete", CompleteInput(actor="frank", outcome=Outcome.SUCCESSFUL))
    return [answered.id, waiting.id, change.id]


async def described(address: str, ids: list[str]) -> list:
    client = await connect(target_host=address)
    return [run_from_execution(await client.get_workflow_handle(i).describe()) for i in ids]


def test_report_reads_visibility_and_matches_each_run(server, tmp_path):
    dev, home = server
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    ids = asyncio.run(drive(dev.address, home))
    until = datetime.now(timezone.utc) + timedelta(minutes=1)
    cli = cli_for(dev.address)
    window = ["--since", since.isoformat(), "--until", until.isoformat()]
    deadline = time.monotonic() + 15
    while True:  # visibility is eventually consistent
        report = json.loads(cli("report", "kpis", *window, "--json").stdout)
        if report["changes"]["outcomes"]["successful"] == 1 and report["incidents"]["all"]["resolved"] == 1 \
                or time.monotonic() > deadline:
            break
        time.sleep(0.3)

    expected = compute(asyncio.run(described(dev.address, ids)), since, until)
    assert {s: report[s] for s in SECTIONS} == {s: expected[s] for s in SECTIONS}
    p1 = report["incidents"]["by_priority"]["P1"]
    assert (p1["opened"], p1["acknowledged"], p1["resolved"]) == (2, 1, 1)
    assert p1["response_sla"] == {"met": 1, "breached": 0, "pending": 1, "compliance_percent": 100.0}
    assert report["changes"]["success_rate_percent"] == 100.0 and report["changes"]["by_type"]["standard"] == 1
    assert report["backlog"]["total"] == 1 and list(report["backlog"]["by_process"]) == ["incident"]

    page = tmp_path / "kpis.html"
    result = cli("report", "kpis", *window, "--html", str(page))
    assert result.stdout == "" and str(page) in result.stderr
    assert all(f'id="chart-{name}"' in page.read_text() for name in ("trend", "sla", "changes"))


async def test_a_continued_incident_counts_from_its_first_run(server):
    """The first run closed before the window: a second list query finds it, so the incident
    is in the backlog but not in the window's cohort."""
    dev, home = server
    client, queue = await connect(target_host=dev.address), f"kpi-{uuid.uuid4()}"
    incident = build_incident(title="flapping", ci="lb-01", impact=3, urgency=3, opened_by="alice")
    short = incident.policy.model_copy(update={"continue_as_new_after": 50})
    db = Database(f"sqlite:///{home / 'cmdb-long.sqlite3'}")
    db.migrate()
    async with build_worker(client, queue, db=db, channel=RecordingChannel()):
        status, _ = await incident_ops.open_incident(client, incident.model_copy(update={"policy": short}), queue)
        handle = client.get_workflow_handle(status.id)
        first = await handle.describe()
        while (await handle.describe()).run_id == first.run_id:  # duplicate alerts grow the history
            await handle.signal("attach", AttachInput(seen_at=datetime.now(timezone.utc), title="again"))
            await asyncio.sleep(0.1)
        since = datetime.now(timezone.utc) + timedelta(milliseconds=10)
        until = since + timedelta(minutes=1)
        for _ in range(50):  # visibility is eventually consistent
            runs = [r for r in await fetch_runs(client, since, until) if r.id == status.id]
            if len(runs) == 2:
                break
            await asyncio.sleep(0.2)
        await handle.terminate("test finished")
    assert sorted(r.status for r in runs) == ["continued_as_new", "running"]
    assert [(c.started, c.running) for c in merge(runs)] == [(first.start_time, True)]
    report = compute(runs, since, until)
    assert report["incidents"]["all"]["opened"] == 0 and report["backlog"]["total"] == 1


@pytest.mark.parametrize("args, message", [
    (["--since", "2026-02-30"], "--since: '2026-02-30' is not an ISO-8601 time"),
    (["--until", "2026-03-01T10:00"], "--until: '2026-03-01T10:00' needs a UTC offset"),
    (["--since", "2026-03-02", "--until", "2026-03-01"], "--until must be after --since"),
    (["--json", "--html", "x.html"], "choose one of --json, --csv and --html"),
])
def test_bad_arguments_exit_2(args, message):
    result = cli_for(f"127.0.0.1:{free_port()}")("report", "kpis", *args, code=2)
    assert message in result.stderr


def test_unreachable_server_exits_1():
    result = cli_for(f"127.0.0.1:{free_port()}", ITSM_TIMEOUT="2")("report", "kpis", code=1)
    assert "cannot reach Temporal" in result.stderr
