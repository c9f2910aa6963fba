"""Client-side operations on incidents, shared by the CLI, the demo and the tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from itsmflow.app import ops
from workflows.incident_dedup import DedupInput, OpenRequest, OpenResult, router_id
from workflows.incident_models import IncidentInput, IncidentStatus
from workflows.incident_models import start_attributes as incident_attributes


async def open_incident(client: Client, incident: IncidentInput, task_queue: str,
                        rpc_timeout: timedelta | None = None,
                        idempotency_key: str | None = None) -> tuple[IncidentStatus, bool]:
    """Open (or, with a dedup key held by an open incident, attach to) an incident.
    Returns the settled status and whether the event was attached to an existing one. A dedup
    key makes its own idempotency: `idempotency_key` applies to incidents without one."""
    dedup_key = incident.dedup_key
    if dedup_key:
        router = router_id(dedup_key)
        incident = incident.model_copy(update={"dedup_router": router})
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            "IncidentDedupWorkflow", DedupInput(key=dedup_key), id=router, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        result = await client.execute_update_with_start_workflow(
            "attach_or_open", OpenRequest(incident=incident), start_workflow_operation=operation,
            result_type=OpenResult, rpc_timeout=rpc_timeout,
        )
        status = await ops.update(client, result.id, "settle", None, IncidentStatus, rpc_timeout)
        return status, result.attached
    status = await ops.start_fresh(client, "IncidentWorkflow", incident, "INC", task_queue=task_queue,
                                   attributes=incident_attributes, result_type=IncidentStatus, rpc_timeout=rpc_timeout,
                                   idempotency_key=idempotency_key)
    return status, False


async def update(client: Client, incident_id: str, name: str, arg,
                 rpc_timeout: timedelta | None = None) -> IncidentStatus:
    return await ops.update(client, incident_id, name, arg, IncidentStatus, rpc_timeout)


async def status(client: Client, incident_id: str, rpc_timeout: timedelta | None = None) -> IncidentStatus:
    return await ops.status(client, incident_id, IncidentStatus, rpc_timeout)
