"""Client-side operations on changes, shared by the CLI, the demo and the tests."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client

from cli import ops
from cli.ids import new_id
from workflows.change_models import ChangeInput, ChangeStatus


async def submit(client: Client, change: ChangeInput, task_queue: str, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    """Start the change and return once it waits for approval (or is scheduled)."""
    first = [change.id]

    def make_id() -> str:
        return first.pop() if first else new_id("CHG")

    async def start(change_id: str) -> ChangeStatus:
        attempt = change.model_copy(update={"id": change_id})
        return await ops.start_and_settle(
            client, "ChangeWorkflow", attempt, id=change_id, task_queue=task_queue,
            attributes={"ItsmProcess": "change", "ItsmState": "new", "ItsmType": change.change_type.value,
                        "ItsmRequester": change.requested_by, "ItsmCI": change.cis},
            memo={"title": change.title}, result_type=ChangeStatus, rpc_timeout=rpc_timeout,
        )

    return await ops.retry_ids(start, make_id)


async def update(client: Client, change_id: str, name: str, arg, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    return await ops.update(client, change_id, name, arg, ChangeStatus, rpc_timeout)


async def status(client: Client, change_id: str, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    return await ops.status(client, change_id, ChangeStatus, rpc_timeout)
