"""Client-side operations every process shares: start-and-settle, updates, status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client, WithStartWorkflowOperation, WorkflowExecutionStatus, WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import typed


async def start_and_settle(
    client: Client, workflow: str, arg: Any, *, id: str, task_queue: str, attributes: dict, memo: dict,
    result_type: type, rpc_timeout: timedelta | None = None,
):
    """Start the run and return once it waits on people or time (update-with-start of
    `settle`, which has no validator: the input was validated before this). Raises
    WorkflowAlreadyStartedError when the id is taken."""
    operation = WithStartWorkflowOperation(
        workflow, arg, id=id, task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, result_type=result_type, memo=memo,
        search_attributes=typed(attributes),
    )
    try:
        return await client.execute_update_with_start_workflow(
            "settle", start_workflow_operation=operation, result_type=result_type, rpc_timeout=rpc_timeout
        )
    except WorkflowUpdateFailedError:
        raise StartRefused(await _failure(client, id)) from None
    except (WorkflowAlreadyStartedError, RPCError) as err:
        # The start's own future holds the same error: retrieve it, or asyncio prints it at exit.
        try:
            await operation.workflow_handle()
        except Exception:  # noqa: BLE001
            pass
        # The time-skipping test server answers ALREADY_EXISTS without the details the SDK maps.
        if isinstance(err, RPCError) and err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        raise WorkflowAlreadyStartedError(id, workflow) from None


class StartRefused(Exception):
    """The run ended before its first step, e.g. ITSM_AUTH could not verify the requester."""


async def _failure(client: Client, run_id: str) -> str:
    async for event in client.get_workflow_handle(run_id).fetch_history_events():
        if event.HasField("workflow_execution_failed_event_attributes"):
            from worker.connect import failure_message

            return await failure_message(client, event.workflow_execution_failed_event_attributes.failure)
    return f"{run_id} ended before its first step"


async def start_fresh(client: Client, workflow: str, arg: Any, prefix: str, *, task_queue: str, attributes,
                      result_type: type, rpc_timeout: timedelta | None = None, fresh_ids: bool = True):
    """start_and_settle under `arg.id`, or (with `fresh_ids`) a fresh `prefix` id while that
    one is taken; `attributes(arg)` gives the start-time search attributes, the memo holds
    the title."""
    from cli.ids import new_id

    first = [arg.id]

    async def start(run_id: str):
        attempt = arg.model_copy(update={"id": run_id})
        return await start_and_settle(
            client, workflow, attempt, id=run_id, task_queue=task_queue, attributes=attributes(attempt),
            memo={"title": arg.title}, result_type=result_type, rpc_timeout=rpc_timeout,
        )

    return await retry_ids(start, lambda: first.pop() if first else new_id(prefix), attempts=5 if fresh_ids else 1)


async def retry_ids(start, make_id, attempts: int = 5):
    """Call `start(id)` with fresh ids until one is free."""
    for _ in range(attempts):
        try:
            return await start(make_id())
        except WorkflowAlreadyStartedError:
            continue
    raise RuntimeError("could not allocate a unique id")


async def update(client: Client, run_id: str, name: str, arg: Any, result_type: type,
                 rpc_timeout: timedelta | None = None):
    handle = client.get_workflow_handle(run_id)
    args = [] if arg is None else [arg]
    return await handle.execute_update(name, args=args, result_type=result_type, rpc_timeout=rpc_timeout)


async def status(client: Client, run_id: str, result_type: type, rpc_timeout: timedelta | None = None):
    """Closed runs are read from their result (no worker needed); open ones are queried."""
    handle = client.get_workflow_handle(run_id, result_type=result_type)
    description = await handle.describe(rpc_timeout=rpc_timeout)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result(rpc_timeout=rpc_timeout)
    return await handle.query("status", result_type=result_type, rpc_timeout=rpc_timeout)
