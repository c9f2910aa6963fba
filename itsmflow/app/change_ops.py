"""Client-side operations on changes, shared by the CLI, the demo and the tests."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client

from itsmflow.app import ops
from workflows.change_models import ChangeInput, ChangeStatus


async def submit(client: Client, change: ChangeInput, task_queue: str, rpc_timeout: timedelta | None = None,
                 idempotency_key: str | None = None) -> ChangeStatus:
    """Start the change and return once it waits for approval (or is scheduled). A change
    raised for a problem is linked to it first (see `submit_for_problem`)."""
    if change.problem:
        return await submit_for_problem(client, change, task_queue, rpc_timeout, idempotency_key)
    return await ops.start_fresh(client, "ChangeWorkflow", change, "CHG", task_queue=task_queue,
                                 attributes=start_attributes, result_type=ChangeStatus, rpc_timeout=rpc_timeout,
                                 idempotency_key=idempotency_key)


async def submit_for_problem(client: Client, change: ChangeInput, task_queue: str,
                             rpc_timeout: timedelta | None = None, idempotency_key: str | None = None) -> ChangeStatus:
    """Link the change to its problem, then start it under exactly the linked id. The
    problem's validator decides first (who may raise a change for it, in which state), so a
    refusal starts nothing; a start that fails after the link tells the problem (its
    `change_not_started` update), so no link dangles."""
    if idempotency_key:  # the keyed id is the one to link
        change, existing = await ops.keyed(client, change, "CHG", idempotency_key, ChangeStatus, rpc_timeout)
        if existing is not None:
            return existing
    await link_problem(client, change, rpc_timeout)
    try:
        return await ops.start_fresh(client, "ChangeWorkflow", change, "CHG", task_queue=task_queue,
                                     attributes=start_attributes, result_type=ChangeStatus, rpc_timeout=rpc_timeout,
                                     fresh_ids=False, idempotency_key=idempotency_key)
    except Exception as err:
        # Only a start that certainly did not happen is "canceled": the id was taken, or the run
        # failed before its first step. After a timeout the change may be running: ask the server.
        if isinstance(err, (RuntimeError, ops.StartRefused)) or not await _exists(client, change.id, rpc_timeout):
            from workflows.problem_models import ChangeLinkInput, ProblemStatus

            try:  # an update, signed like the link: ITSM_AUTH drops unsigned signals
                await ops.update(client, _problem_of(change), "change_not_started",
                                 ChangeLinkInput(actor=change.requested_by, change_id=change.id), ProblemStatus,
                                 rpc_timeout)
            except Exception:  # noqa: BLE001 (the start's own error is the one to report)
                pass
        raise


def _problem_of(change: ChangeInput) -> str:
    if change.problem is None:
        raise ValueError(f"{change.id} names no problem: submit() starts it")
    return change.problem


async def _exists(client: Client, run_id: str, rpc_timeout: timedelta | None) -> bool:
    """Whether a run has this id; True when the server cannot tell (then nothing is undone)."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_workflow_handle(run_id).describe(rpc_timeout=rpc_timeout)
    except RPCError as err:
        return err.status != RPCStatusCode.NOT_FOUND
    except Exception:  # noqa: BLE001
        return True
    return True


def start_attributes(change: ChangeInput) -> dict:
    return {"ItsmProcess": "change", "ItsmState": "new", "ItsmType": change.change_type.value,
            "ItsmRequester": change.requested_by, "ItsmCI": change.cis}


async def update(client: Client, change_id: str, name: str, arg, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    return await ops.update(client, change_id, name, arg, ChangeStatus, rpc_timeout)


async def status(client: Client, change_id: str, rpc_timeout: timedelta | None = None) -> ChangeStatus:
    return await ops.status(client, change_id, ChangeStatus, rpc_timeout)


async def link_problem(client: Client, change: ChangeInput, rpc_timeout: timedelta | None = None) -> None:
    """Tell the problem of the change before it starts: the problem's validator decides
    (who may raise a change for it, in which state), so a refusal starts nothing."""
    from workflows.problem_models import ChangeLinkInput, ProblemStatus

    await ops.update(client, _problem_of(change), "link_change",
                     ChangeLinkInput(actor=change.requested_by, change_id=change.id), ProblemStatus, rpc_timeout)
