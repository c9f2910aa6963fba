"""Fast reads (issue 16): every `show` and `list` answers on the lean path (cli/fast.py,
itsmflow/app/lean_read.py: the HTTP API and the standard library, no temporalio, click or
pydantic) with what the full click path prints, byte for byte, on a real dev server with a
real worker; from the memo only when the query would answer the same, and the full path
answers whatever the lean path cannot.

`lean(...)` runs `itsm` with temporalio, click and pydantic unimportable, so it succeeds only
when the lean path answered by itself; `full(...)` runs the full click application."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus

from activities.db import Database
from cli.common import to_json_model
from definitions import registry
from definitions.change import ChangeType
from itsmflow.app import cards, change_ops, incident_ops, lean_read, problem_ops, request_ops
from itsmflow.app import lean as lean_http
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from itsmflow.app.incident_submit import build_incident
from itsmflow.app.problem_submit import build_problem
from itsmflow.app.request_submit import build_request
from tests.cli.test_reads_without_worker import build_change_input
from tests.cli.test_start_waiting import killed_worker
from tests.conftest import RecordingChannel
from worker.main import build_worker
from workflows.base import MEMO_STATUS, compact_status
from workflows.change_models import ChangeStatus, CompleteInput, Outcome
from workflows.incident_models import ActorInput, NoteInput
from workflows.search_attributes import typed

BLOCKED = ("import sys\n"
           "for name in ('temporalio', 'click', 'pydantic'):\n"
           "    sys.modules[name] = None  # importing it fails: the lean path must answer alone\n"
           "sys.argv[0] = 'itsm'\n"
           "from cli.fast import main\n"
           "main()\n")
HOSTILE = "\x1b]8;;http://evil.example\x07click me\x1b]8;;\x07 \x1b[2J\rsafe \u202eevil\u202c"


def environment(live, queue: str) -> dict[str, str]:
    return {**os.environ, "TEMPORAL_ADDRESS": live.client.service_client.config.target_host,
            "ITSM_HTTP_ADDRESS": f"http://127.0.0.1:{live.server.http_port}", "ITSM_TASK_QUEUE": queue,
            "ITSM_TIMEOUT": "10"}


def run(env: dict[str, str], command: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *command, *args], env=env, capture_output=True, text=True, timeout=90)


async def lean(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(run, env, ["-c", BLOCKED], *args)


async def full(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(run, env, ["-m", "cli.main"], *args)


async def same(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The lean path answered alone, exactly as the full path does (exit code, stdout, stderr)."""
    fast, slow = await lean(env, *args), await full(env, *args)
    assert "Traceback" not in fast.stderr, f"the lean path did not answer `itsm {' '.join(args)}`: {why(env, args)}"
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), args
    return fast


def why(env: dict[str, str], args: tuple[str, ...]) -> str:
    """Why the lean path declined a `show` (lean_read's own words), for a failing test's message."""
    if len(args) < 3 or args[1] != "show":
        return "(a list: see lean_read.list_rows)"
    code = "import sys\nfrom itsmflow.app import lean_read\nlean_read.read(sys.argv[1])"
    return (run(env, ["-c", code], args[2]).stderr.strip().splitlines() or ["it answers now"])[-1]


async def declined(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The lean path left it to the full path, which answered as it does on its own."""
    blocked = await lean(env, *args)
    assert blocked.returncode == 1 and "halted; None in sys.modules" in blocked.stderr, blocked.stderr
    entry, slow = await asyncio.to_thread(run, env, ["-m", "cli.fast"], *args), await full(env, *args)
    assert (entry.returncode, entry.stdout, entry.stderr) == (slow.returncode, slow.stdout, slow.stderr), args
    return entry


@dataclass
class World:
    env: dict[str, str]
    ids: dict[str, str]


async def until(check, what: str, seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def listed_as_described(client, run_ids) -> bool:
    """Visibility has caught up with every run (its state and status as describe gives them)."""
    for run_id in run_ids:
        described = await client.get_workflow_handle(run_id).describe()
        rows = [e async for e in client.list_workflows(f"WorkflowId = '{run_id}'")]
        if len(rows) != 1 or rows[0].status != described.status or (
                rows[0].search_attributes.get("ItsmState") != described.search_attributes.get("ItsmState")):
            return False
    return True


@pytest.fixture(scope="module")
async def world(live, tmp_path_factory):
    """A change waiting for approval, a closed one, a terminated one, an acknowledged incident
    with a long timeline, a problem and a request with items and a task, on a live worker."""
    client, queue = live.client, f"tq-{uuid.uuid4()}"
    home = tmp_path_factory.mktemp("lean")
    db = Database(f"sqlite:///{home / 'cmdb.sqlite3'}")
    db.migrate()
    async with build_worker(client, queue, db=db, channel=RecordingChannel()):
        ids = {"waiting": (await change_ops.submit(client, build_change_input(), queue)).id,
               "terminated": (await change_ops.submit(client, build_change_input(), queue)).id}
        await client.get_workflow_handle(ids["terminated"]).terminate("lean test")
        now = datetime.now(timezone.utc)
        standard = build_change(change_id=new_id("CHG"), title="Restart web-01", cis=["web-01"],
                                change_type=ChangeType.STANDARD, template="restart-web-server", start=now,
                                end=now + timedelta(minutes=30), requested_by="alice", now=now,
                                policy=registry.get("acme-demo"))
        ids["closed"] = (await change_ops.submit(client, standard, queue)).id

        async def implementing() -> bool:
            return (await change_ops.status(client, ids["closed"])).state.value == "implement"

        await until(implementing, "the standard change to start")
        await change_ops.update(client, ids["closed"], "complete", CompleteInput(actor="frank",
                                                                               outcome=Outcome.SUCCESSFUL))
        incident = build_incident(title="Checkout slow", ci="lb-01", impact=3, urgency=3, opened_by="alice")
        ids["incident"] = (await incident_ops.open_incident(client, incident, queue))[0].id
        await incident_ops.update(client, ids["incident"], "acknowledge", ActorInput(actor="dave"))
        for number in range(12):  # past the memo's timeline tail
            await incident_ops.update(client, ids["incident"], "note", NoteInput(actor="dave", text=f"note {number}"))
        problem = build_problem(title="web-02 keeps failing", ci="web-02", opened_by="carol")
        ids["problem"] = (await problem_ops.open_problem(client, problem, queue)).id
        request = build_request(item_name="onboarding", raw={"name": "Zed Z", "start_date": "2030-01-10",
                                                             "team": "web"}, requested_by="alice")
        ids["request"] = (await request_ops.submit(client, request, queue)).id

        async def laptop_task() -> bool:
            status = await request_ops.status(client, ids["request"])
            items = await request_ops.items(client, status)
            laptop = next((i for i in items if i and i.item == "laptop"), None)
            task = next((t.task_id for t in laptop.tasks if t.task_id), None) if laptop else None
            ids.update({"item": laptop.id, "task": task} if task else {})
            return task is not None and any(i and i.state.value == "approval" for i in items)

        await until(laptop_task, "the laptop's task and the VPN approval")
        everything = list(ids.values())

        async def settled() -> bool:
            closed = await client.get_workflow_handle(ids["closed"]).describe()
            return closed.status == WorkflowExecutionStatus.COMPLETED and await listed_as_described(client,
                                                                                                    everything)

        await until(settled, "visibility to catch up")
        yield World(environment(live, queue), ids)
    for run_id in everything:
        try:
            await client.get_workflow_handle(run_id).terminate("test finished")
        except Exception:  # noqa: BLE001 (closed already)
            pass


SHOWS = [("change", "waiting"), ("change", "closed"), ("change", "terminated"), ("incident", "incident"),
         ("problem", "problem"), ("request", "request"), ("process", "waiting"), ("process", "incident"),
         ("process", "request"), ("process", "item"), ("process", "task")]
LISTS = [
    (("change", "list"), "waiting"), (("change", "list", "--state", "authorize"), "waiting"),
    (("incident", "list", "--priority", "P4"), "incident"),
    (("incident", "list", "--state", "in_progress", "--limit", "3"), "incident"), (("problem", "list"), "problem"),
    (("request", "list"), "request"), (("runs", "list", "--limit", "500"), "closed"),
    (("runs", "list", "--process", "task"), "task"),
    (("runs", "list", "--process", "item", "--state=fulfilling"), "item"),
    (("runs", "list", "--process", "change"), "terminated"),
]


@pytest.mark.parametrize("noun, run", SHOWS)
@pytest.mark.parametrize("as_json", [False, True])
async def test_every_show_answers_lean_with_what_the_full_path_prints(world, noun, run, as_json):
    shown = await same(world.env, noun, "show", world.ids[run], *(["--json"] if as_json else []))
    assert shown.returncode == 0 and world.ids[run] in shown.stdout


@pytest.mark.parametrize("args, run", LISTS)
@pytest.mark.parametrize("as_json", [False, True])
async def test_every_list_answers_lean_with_what_the_full_path_prints(world, args, run, as_json):
    listed = await same(world.env, *args, *(["--json"] if as_json else []))
    assert listed.returncode == 0 and world.ids[run] in listed.stdout


async def test_the_lean_path_says_an_id_is_unknown_as_the_full_path_does(world):
    unknown = await same(world.env, "change", "show", "CHG-20200101-AAAA")
    assert (unknown.returncode, unknown.stderr) == (2, "itsm: no such id 'CHG-20200101-AAAA'\n")
    assert json.loads((await same(world.env, "runs", "list", "--process", "change", "--state", "nope", "--json"))
                      .stdout) == []


async def test_the_full_path_answers_where_the_lean_path_cannot_reach_the_server(world):
    refused = {**world.env, "ITSM_HTTP_ADDRESS": "http://127.0.0.1:1"}
    for args in (("change", "show", world.ids["waiting"]), ("incident", "list", "--json")):
        await declined(refused, *args)


@pytest.fixture
def lean_env(live, world, monkeypatch):
    """lean_read in this process, every HTTP API path it asks for recorded."""
    for name in ("TEMPORAL_ADDRESS", "ITSM_HTTP_ADDRESS"):
        monkeypatch.setenv(name, world.env[name])
    asked: list[str] = []
    api = lean_http.api

    def recorded(path, *args, **kwargs):
        kinds = {"history-reverse": "history", "status": "query"}
        asked.append("pollers" if path.startswith("task-queues/") else kinds.get(path.rsplit("/", 1)[-1], "describe"))
        return api(path, *args, **kwargs)

    monkeypatch.setattr(lean_http, "api", recorded)
    return asked


async def test_an_open_run_is_answered_from_its_memo_only_where_the_query_answers_the_same(world, lean_env, live):
    """With a worker polling and no workflow task pending, a change's and a problem's memo is
    lossless: it is read instead of the query, and it is what the query answers. An
    incident's SLA clocks (fractions the memo rounds) are always asked for."""
    for run in ("waiting", "problem", "request"):
        lean_env.clear()
        read = await asyncio.to_thread(lean_read.read, world.ids[run])
        assert lean_env == ["describe", "pollers"], (run, lean_env)  # no query
        queried = await live.client.workflow_service.query_workflow(_query_request(live, world.ids[run]))
        answered = json.loads(queried.query_result.payloads[0].data)
        assert (cards.utc(read.status), read.stale) == (cards.utc(answered), None), run
    lean_env.clear()
    incident = await asyncio.to_thread(lean_read.read, world.ids["incident"])
    assert lean_env == ["describe", "pollers", "query"] and incident.stale is None  # answered live
    assert len(incident.status["events"]) > 10  # the memo holds only the last 10
    published = (await (await live.client.get_workflow_handle(world.ids["incident"]).describe()).memo())[MEMO_STATUS]
    assert published["events"] == "tail" and compact_status(incident.status)["value"] == published["value"]
    lean_env.clear()
    closed = await asyncio.to_thread(lean_read.read, world.ids["closed"])
    assert lean_env == ["describe", "history"] and closed.status["state"] == "closed"
    result = await live.client.get_workflow_handle(world.ids["closed"], result_type=ChangeStatus).result()
    assert cards.utc(closed.status) == to_json_model(result)
    lean_env.clear()
    terminated = await asyncio.to_thread(lean_read.read, world.ids["terminated"])
    assert lean_env == ["describe"] and terminated.stale == "the run is terminated"


def _query_request(live, run_id: str):
    from temporalio.api.workflowservice.v1 import QueryWorkflowRequest

    request = QueryWorkflowRequest(namespace=live.client.namespace)
    request.execution.workflow_id = run_id
    request.query.query_type = "status"
    return request


async def test_a_listed_worker_that_died(live, tmp_path):
    """Its poller is listed for minutes. An incident is asked, gets no answer, and is read from
    its memo with the full path's words. A change with nothing pending is read from its memo
    without asking: that is the answer a live worker would give, so the lean path does not say
    it may be stale (the full path, which asks first, does, after its 5 s)."""
    queue = f"tq-{uuid.uuid4()}"
    env = environment(live, queue)
    db = Database(f"sqlite:///{tmp_path / 'cmdb.sqlite3'}")
    db.migrate()
    async with build_worker(live.client, queue, db=db, channel=RecordingChannel()):
        change = await change_ops.submit(live.client, build_change_input(), queue)
        incident = build_incident(title="Checkout slow", ci="lb-01", impact=3, urgency=3, opened_by="alice")
        opened = (await incident_ops.open_incident(live.client, incident, queue))[0]
    try:
        await killed_worker(live, queue, tmp_path)
        for flag in ([], ["--json"]):
            shown = await same(env, "incident", "show", opened.id, *flag)
            assert "may be stale: no worker answered in 5s" in shown.stdout or '"stale": "no worker answered in 5s"' \
                in shown.stdout
        fast, slow = await lean(env, "change", "show", change.id, "--json"), await full(env, "change", "show",
                                                                                        change.id, "--json")
        answered_by_full = json.loads(slow.stdout)
        assert answered_by_full.pop("stale") == "no worker answered in 5s" and answered_by_full.pop("as_of")
        assert json.loads(fast.stdout) == answered_by_full
    finally:
        for run_id in (change.id, opened.id):
            await live.client.get_workflow_handle(run_id).terminate("test finished")


async def start_with_memo(live, queue: str, status: dict | None, title: str = "Patch web-02") -> str:
    """A change no worker ever took up, carrying `status` as its published memo status."""
    change = build_change_input()
    memo: dict = {"title": title}
    if status is not None:
        memo[MEMO_STATUS] = {"at": "2030-01-01T09:00:00+00:00", **compact_status(status), "actions": []}
    await live.client.start_workflow("ChangeWorkflow", change, id=change.id, task_queue=queue, memo=memo,
                                     search_attributes=typed({"ItsmProcess": "change", "ItsmState": "new"}))
    return change.id


def change_status(title: str = "Patch web-02", validated: bool = True) -> dict:
    """A new change's status; its title as the model validates it (one line), or as given."""
    status = ChangeStatus.initial(build_change_input())
    if validated:
        return ChangeStatus.model_validate({**status.model_dump(), "title": title}).model_dump(mode="json")
    return status.model_dump(mode="json") | {"title": title}


async def test_a_run_no_worker_polls_is_read_from_its_memo_as_the_full_path_reads_it(live, task_queue):
    """No worker ever polled its queue: the memo, as of its time, "no worker is polling". A
    run of an older version (without a field added since) reads with the field's default, as
    the full path reads it. The lean path leaves to the full path what its validation would
    change otherwise (a field this CLI does not know; a title a raw client put in, not on one
    line) and a run that never published its status."""
    env = environment(live, task_queue)
    hostile = await start_with_memo(live, task_queue, change_status(HOSTILE), HOSTILE)
    raw = await start_with_memo(live, task_queue, change_status(HOSTILE, validated=False), HOSTILE)
    older = change_status()
    del older["problem"], older["conflicts"]  # the full path fills their defaults in
    old = await start_with_memo(live, task_queue, older)
    newer = await start_with_memo(live, task_queue, {**change_status(), "added_later": "x"})
    never = await start_with_memo(live, task_queue, None)
    try:
        for flag in ([], ["--json"]):
            for answered in (hostile, old):
                shown = await same(env, "change", "show", answered, *flag)
                assert "no worker is polling its task queue (is `itsm worker` running?)" in shown.stdout
            assert '"problem": null' in (await same(env, "change", "show", old, "--json")).stdout
            shown = await same(env, "change", "show", hostile, *flag)
            assert "]8;;http://evil.example click me ]8;;" in shown.stdout and "\x1b" not in shown.stdout
            for declining in (raw, newer):
                assert "no worker is polling its task queue" in (await declined(env, "change", "show", declining,
                                                                                *flag)).stdout
        unread = await declined(env, "change", "show", never)
        assert unread.returncode == 1 and "has published no status yet" in unread.stderr

        async def listed() -> bool:
            return hostile in (await full(env, "runs", "list", "--process", "change", "--limit", "500")).stdout

        await until(listed, "the runs to be listed")
        for flag in ([], ["--json"]):  # their memo titles as the raw client set them, escapes and all
            listing = await same(env, "runs", "list", "--process", "change", "--limit", "500", *flag)
            assert "\\u001b]8;;http://evil.example\\u0007click me" in listing.stdout and "\x1b" not in listing.stdout
        await live.client.get_workflow_handle(hostile).terminate("lean test")
        for flag in ([], ["--json"]):
            assert "the run is terminated" in (await same(env, "change", "show", hostile, *flag)).stdout
    finally:
        for run_id in (hostile, raw, old, newer, never):
            try:
                await live.client.get_workflow_handle(run_id).terminate("test finished")
            except Exception:  # noqa: BLE001 (terminated above)
                pass


@workflow.defn(name="ChangeWorkflow", sandboxed=False)
class FailingChange:
    """A change whose every workflow task fails."""

    @workflow.run
    async def run(self, change: dict) -> None:
        raise RuntimeError("cannot go on")


async def test_a_run_whose_workflow_task_keeps_failing_is_read_from_its_memo(live, task_queue):
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    env = environment(live, task_queue)
    async with Worker(live.client, task_queue=task_queue, workflows=[FailingChange],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        run_id = await start_with_memo(live, task_queue, change_status())

        async def failing() -> bool:
            described = await live.client.get_workflow_handle(run_id).describe()
            return described.raw_description.pending_workflow_task.attempt >= 2

        await until(failing, "the workflow task to fail twice")
    try:  # the worker is gone: the attempt count stands still
        for flag in ([], ["--json"]):
            shown = await same(env, "change", "show", run_id, *flag)
            assert "its workflow task is failing (attempt " in shown.stdout
    finally:
        await live.client.get_workflow_handle(run_id).terminate("test finished")
