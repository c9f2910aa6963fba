"""pytest fixtures of the testing kit (`pytest_plugins = ["itsmflow.testing.plugin"]`):

- `itsm_server`: a time-skipping Temporal server of the test's own;
- `itsm`: a `ProcessHarness` on it, its worker running every loaded process.

Tests are `async def` (pytest-asyncio in auto mode, or mark them)."""

from __future__ import annotations

import pytest

from itsmflow.testing import ProcessHarness, time_skipping_server


@pytest.fixture
async def itsm_server():
    server = await time_skipping_server()
    yield server
    await server.shutdown()


@pytest.fixture
async def itsm(itsm_server, tmp_path):
    async with ProcessHarness(itsm_server, tmp_path) as harness:
        yield harness
