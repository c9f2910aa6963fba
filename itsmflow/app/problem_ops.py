"""Client-side operations on problems, shared by the CLI and the tests."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client

from itsmflow.app import ops
from workflows.problem_models import ProblemInput, ProblemStatus, start_attributes


async def open_problem(client: Client, problem: ProblemInput, task_queue: str,
                       rpc_timeout: timedelta | None = None, idempotency_key: str | None = None) -> ProblemStatus:
    """Start the problem and return once it waits for its investigators."""
    return await ops.start_fresh(client, "ProblemWorkflow", problem, "PRB", task_queue=task_queue,
                                 attributes=start_attributes, result_type=ProblemStatus, rpc_timeout=rpc_timeout,
                                 idempotency_key=idempotency_key)


async def update(client: Client, problem_id: str, name: str, arg,
                 rpc_timeout: timedelta | None = None) -> ProblemStatus:
    return await ops.update(client, problem_id, name, arg, ProblemStatus, rpc_timeout)


async def status(client: Client, problem_id: str, rpc_timeout: timedelta | None = None) -> ProblemStatus:
    return await ops.status(client, problem_id, ProblemStatus, rpc_timeout)
