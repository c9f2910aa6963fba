"""Helpers for problem tests: opening problems, waiting for a signal's effect, cleanup of
every run a test starts (problems the system suggested included)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from itsmflow.app import problem_ops
from itsmflow.app.problem_submit import build_problem
from tests.workflows.helpers import running_worker
from tests.workflows.incident_helpers import Incidents, page, policy
from workflows.problem_models import ProblemStatus

QUIET = policy(page("bob"))


class Problems:
    """Opens problems and incidents on one task queue; `close_all` terminates whatever is
    still open, including problems the worker started on its own."""

    def __init__(self, env, task_queue: str) -> None:
        self.env, self.ids = env, []
        self.incidents = Incidents(env, task_queue)
        self.task_queue = task_queue

    async def open(self, **fields) -> ProblemStatus:
        fields = {"title": "lb-01 drops connections", "ci": "lb-01", "opened_by": "dave", **fields}
        status = await problem_ops.open_problem(self.env.client, build_problem(**fields), self.task_queue)
        self.ids.append(status.id)
        return status

    async def incident(self, **fields):
        """An incident (on lb-01 unless told) that pages bob once."""
        status = await self.incidents.open(QUIET, **fields)
        if status.problem:
            self.ids.append(status.problem)
        return status

    async def act(self, problem_id: str, name: str, arg) -> ProblemStatus:
        return await problem_ops.update(self.env.client, problem_id, name, arg)

    async def show(self, problem_id: str) -> ProblemStatus:
        return await problem_ops.status(self.env.client, problem_id)

    async def eventually(self, run_id: str, check, show=None):
        """The status once `check(status)` holds: signals between runs arrive asynchronously."""
        show = show or (self.show if run_id.startswith("PRB") else self.incidents.show)
        deadline = time.monotonic() + 30  # real time: a loaded CI runner is slow, not wrong
        while True:
            status = await show(run_id)
            if check(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{run_id} never reached the expected state: {status}")
            await asyncio.sleep(0.05)

    async def settle_all(self) -> None:
        """Let every run finish what it started while the worker still runs: the test server
        keeps its clock locked for an activity whose run is terminated mid-flight."""
        for run_id in dict.fromkeys([*self.incidents.ids, *self.ids]):
            handle = self.env.client.get_workflow_handle(run_id)
            if (await handle.describe()).status.name == "RUNNING":
                await asyncio.wait_for(handle.execute_update("settle"), timeout=10)

    async def close_all(self) -> None:
        await self.incidents.close_all()
        for problem_id in dict.fromkeys(self.ids):
            handle = self.env.client.get_workflow_handle(problem_id)
            if (await handle.describe()).status.name == "RUNNING":
                await handle.terminate("test finished")


@pytest.fixture
async def problems(env, task_queue, db, channel):
    """A running worker and a tracker of the runs the test starts."""
    tracker = Problems(env, task_queue)
    try:
        async with running_worker(env, task_queue, db, channel):
            try:
                yield tracker
            finally:
                await tracker.settle_all()
    finally:
        await tracker.close_all()


async def raise_change(env, task_queue: str, problem_id: str, requested_by: str, cis=("web-01",)):
    """A normal change for the problem, planned an hour from the fake now (acme-demo policy),
    linked the way `itsm change submit --problem` links it."""
    from definitions import registry
    from definitions.change import ChangeType
    from itsmflow.app import change_ops
    from itsmflow.app.change_submit import build_change
    from itsmflow.app.ids import new_id

    now = await env.get_current_time()
    change = build_change(change_id=new_id("CHG", now), title="Fix the problem's cause", cis=list(cis),
                          change_type=ChangeType.NORMAL, start=now + timedelta(hours=1), end=now + timedelta(hours=2),
                          requested_by=requested_by, now=now, policy=registry.get("acme-demo"), problem=problem_id)
    return await change_ops.submit(env.client, change, task_queue)
