"""Client-side operations on requests, items and tasks (CLI, demo, tests)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowUpdateFailedError

from itsmflow.app import ops
from workflows.request_models import ItemStatus, ManualTaskResult, RequestInput, RequestState, RequestStatus


async def submit(client: Client, request: RequestInput, task_queue: str,
                 rpc_timeout: timedelta | None = None, idempotency_key: str | None = None) -> RequestStatus:
    return await ops.start_fresh(client, "RequestWorkflow", request, "REQ", task_queue=task_queue,
                                 attributes=start_attributes, result_type=RequestStatus, rpc_timeout=rpc_timeout,
                                 idempotency_key=idempotency_key)


def start_attributes(request: RequestInput) -> dict:
    return {"ItsmProcess": "request", "ItsmState": "requested", "ItsmType": request.item,
            "ItsmRequester": request.requested_by}


async def status(client: Client, run_id: str, rpc_timeout: timedelta | None = None):
    model = {"REQ": RequestStatus, "RITM": ItemStatus, "TASK": ManualTaskResult}[run_id.split("-", 1)[0]]
    return await ops.status(client, run_id, model, rpc_timeout)


async def items(client: Client, request: RequestStatus) -> list[ItemStatus | None]:
    """Each item's own status (None for items not started yet)."""
    found = []
    for ref in request.items:
        try:
            found.append(await ops.status(client, ref.id, ItemStatus))
        except Exception:  # not started (skipped or waiting for a predecessor)
            found.append(None)
    return found


async def decide(client: Client, run_id: str, name: str, arg, rpc_timeout: timedelta | None = None) -> ItemStatus:
    """approve/reject an item; a request id routes to its items awaiting approval."""
    if not run_id.startswith("REQ-"):
        return await ops.update(client, run_id, name, arg, ItemStatus, rpc_timeout)
    request = await ops.status(client, run_id, RequestStatus, rpc_timeout)
    waiting = [item.id for item in await items(client, request) if item and item.state == RequestState.APPROVAL]
    if not waiting:
        raise LookupError(f"{run_id} has no item awaiting approval")
    refusals: list[WorkflowUpdateFailedError] = []
    for item_id in waiting:
        try:
            return await ops.update(client, item_id, name, arg, ItemStatus, rpc_timeout)
        except WorkflowUpdateFailedError as err:
            refusals.append(err)
    raise refusals[0]  # the first item's reason


async def cancel(client: Client, request_id: str, arg, rpc_timeout: timedelta | None = None) -> RequestStatus:
    return await ops.update(client, request_id, "cancel", arg, RequestStatus, rpc_timeout)


async def task_action(client: Client, task_id: str, name: str, arg, rpc_timeout: timedelta | None = None):
    return await ops.update(client, task_id, name, arg, ManualTaskResult, rpc_timeout)
