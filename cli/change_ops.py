"""Client-side operations on changes, shared by the CLI, the demo and the tests."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from cli.ids import new_id
from workflows.change_models import ChangeInput, ChangeStatus
from workflows.search_attributes import keys

WORKFLOW = "ChangeWorkflow"


async def submit(client: Client, change: ChangeInput, task_queue: str, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    """Start the run and return once it waits on people or time (update-with-start of
    `settle`, which has no validator: the submission was validated before this)."""
    attrs = keys()
    for _ in range(5):
        operation = WithStartWorkflowOperation(
            WORKFLOW,
            change,
            id=change.id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            result_type=ChangeStatus,
            memo={"title": change.title},
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(attrs["ItsmProcess"], "change"),
                SearchAttributePair(attrs["ItsmState"], "new"),
                SearchAttributePair(attrs["ItsmType"], change.change_type.value),
                SearchAttributePair(attrs["ItsmRequester"], change.requested_by),
                SearchAttributePair(attrs["ItsmCI"], change.cis),
            ]),
        )
        try:
            return await client.execute_update_with_start_workflow(
                "settle", start_workflow_operation=operation, result_type=ChangeStatus, rpc_timeout=rpc_timeout
            )
        except WorkflowAlreadyStartedError:
            change = change.model_copy(update={"id": new_id("CHG")})
    raise RuntimeError("could not allocate a unique change id")


async def update(client: Client, change_id: str, name: str, arg, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    handle = client.get_workflow_handle(change_id)
    return await handle.execute_update(name, arg, result_type=ChangeStatus, rpc_timeout=rpc_timeout)


async def status(client: Client, change_id: str, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    """Closed runs are read from their result (no worker needed); open ones are queried."""
    handle = client.get_workflow_handle(change_id, result_type=ChangeStatus)
    description = await handle.describe(rpc_timeout=rpc_timeout)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result(rpc_timeout=rpc_timeout)
    return await handle.query("status", result_type=ChangeStatus, rpc_timeout=rpc_timeout)
