"""Fixtures of the worker tests: the users' keys for ITSM_AUTH, and the runs a test started."""

from __future__ import annotations

import pytest

from tests.worker.auth_helpers import make_keys


@pytest.fixture(scope="module")
def keys():
    return make_keys()


@pytest.fixture
async def tracked(request):
    """Ids of runs a test starts (on `live` if the test uses it, else `env`), terminated
    afterwards if still open, the last started first."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    ids: list[str] = []
    yield ids
    env = request.getfixturevalue("live" if "live" in request.fixturenames else "env")
    for run_id in reversed(ids):
        handle = env.client.get_workflow_handle(run_id)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test teardown")
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # a run the test meant to start but never did
                raise
