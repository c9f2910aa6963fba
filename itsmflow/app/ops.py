"""Client-side operations every process shares: start-and-settle, updates, status."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from datetime import timedelta
from typing import Any, NamedTuple

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from itsmflow.errors import WRONG_STATE
from workflows.search_attributes import typed


async def start_and_settle(
    client: Client, workflow: str, arg: Any, *, id: str, task_queue: str, attributes: dict, memo: dict,
    result_type: type, rpc_timeout: timedelta | None = None,
):
    """Start the run and return once it waits on people or time (update-with-start of
    `settle`, which has no validator: the input was validated before this). Raises
    WorkflowAlreadyStartedError when the id is taken."""
    operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        workflow, arg, id=id, task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, result_type=result_type, memo=memo,
        search_attributes=typed(attributes),
        # What the Temporal UI lists beside the id: the title, and what the run is.
        static_summary=memo.get("title") or None,
        static_details=" · ".join(str(v) for k, v in attributes.items() if k in ("ItsmProcess", "ItsmType",
                                                                              "ItsmRequester") and v),
    )
    try:
        settled = await client.execute_update_with_start_workflow(
            "settle", start_workflow_operation=operation, result_type=result_type, rpc_timeout=rpc_timeout
        )
    except WorkflowUpdateFailedError:
        raise StartRefused(await _failure(client, id)) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError) as timeout:
        # No worker took it up in time (one that just died is still listed for minutes): if the
        # run exists it is started, and must not be started again.
        try:
            await client.get_workflow_handle(id).describe(rpc_timeout=rpc_timeout)
        except Exception:  # noqa: BLE001 (not there, or the server cannot tell: the timeout stands)
            raise timeout from None
        raise StartedWaiting(id) from None
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
    answered_clear(client, id)
    return settled


class StartRefused(Exception):
    """The run ended before its first step, e.g. ITSM_AUTH could not verify the requester."""


class StartedWaiting(Exception):
    """The run exists, but no worker has taken it up yet: it is not to be started again."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"{run_id} started, waiting for a worker (is `itsm worker` running?)")
        self.run_id = run_id


async def _failure(client: Client, run_id: str) -> str:
    async for event in client.get_workflow_handle(run_id).fetch_history_events():
        if event.HasField("workflow_execution_failed_event_attributes"):
            from worker.connect import failure_message

            return await failure_message(client, event.workflow_execution_failed_event_attributes.failure)
    return f"{run_id} ended before its first step"


async def start_fresh(client: Client, workflow: str, arg: Any, prefix: str, *, task_queue: str, attributes,
                      result_type: type, rpc_timeout: timedelta | None = None, fresh_ids: bool = True,
                      idempotency_key: str | None = None, title_field: str = "title"):
    """start_and_settle under `arg.id`, or (with `fresh_ids`) a fresh `prefix` id while that
    one is taken; `attributes(arg)` gives the start-time search attributes, the memo holds
    the title (the input's `title_field`). With `idempotency_key`, a repeated start returns the
    run the first one made."""
    from itsmflow.app.ids import new_id

    memo = {"title": str(getattr(arg, title_field, "") or "")}
    if idempotency_key:
        arg, existing = await keyed(client, arg, prefix, idempotency_key, result_type, rpc_timeout)
        if existing is not None:
            return existing
        memo["idempotency_key"], fresh_ids = idempotency_key, False
    first = [arg.id]

    async def start(run_id: str):
        attempt = arg.model_copy(update={"id": run_id})
        return await start_and_settle(
            client, workflow, attempt, id=run_id, task_queue=task_queue, attributes=attributes(attempt),
            memo=memo, result_type=result_type, rpc_timeout=rpc_timeout,
        )

    try:
        return await retry_ids(start, lambda: first.pop() if first else new_id(prefix),
                               attempts=5 if fresh_ids else 1)
    except RuntimeError:
        if not idempotency_key:
            raise
        # The same key, started by someone else a moment ago: that run is the answer.
        arg, existing = await keyed(client, arg, prefix, idempotency_key, result_type, rpc_timeout)
        if existing is None:
            raise
        return existing


async def keyed(client: Client, arg: Any, prefix: str, key: str, result_type: type,
                rpc_timeout: timedelta | None = None) -> tuple[Any, Any]:
    """`arg` under the id `key` gives today, and the status of the run a start with this key
    already made (today or yesterday, UTC), if one did."""
    from datetime import datetime, timezone

    from itsmflow.app.ids import keyed_id

    if not key.strip() or len(key) > 200:
        raise InputRefused("--idempotency-key must be 1-200 characters")
    today = datetime.now(timezone.utc)
    for day in (today, today - timedelta(days=1)):
        run_id = keyed_id(prefix, key, day)
        try:
            description = await client.get_workflow_handle(run_id).describe(rpc_timeout=rpc_timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        if (await description.memo()).get("idempotency_key") != key:
            raise StartRefused(f"idempotency key {key!r} gives {run_id}, which another start took; choose another key")
        try:
            return arg, await status(client, run_id, result_type, rpc_timeout)
        except (WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError, RPCError, Unread):
            raise StartedWaiting(run_id) from None
    return arg.model_copy(update={"id": keyed_id(prefix, key, today)}), None


async def retry_ids(start, make_id, attempts: int = 5):
    """Call `start(id)` with fresh ids until one is free."""
    for _ in range(attempts):
        try:
            return await start(make_id())
        except WorkflowAlreadyStartedError:
            continue
    raise RuntimeError("could not allocate a unique id")


CLEAR_FOR = 30.0
"""Seconds a run that answered a keyless client in clear is taken to be in clear still."""
CLEAR_KEPT = 4096
_answered: weakref.WeakKeyDictionary[Client, OrderedDict[str, float]] = weakref.WeakKeyDictionary()


def answered_clear(client: Client, run_id: str) -> None:
    """A client without the key read the run's answer: its worker wrote in clear just now. For
    CLEAR_FOR after, a write from this client skips `encrypted`'s describe (a server read per
    write): a long-lived front end, such as the HTTP service or an automation opening and then
    acknowledging, writes on at once. The describe has the same window (the worker could be
    given the key just after it), only shorter."""
    if client.data_converter.payload_codec is not None:
        return
    seen = _answered.setdefault(client, OrderedDict())
    seen[run_id] = time.monotonic()
    seen.move_to_end(run_id)
    while len(seen) > CLEAR_KEPT:
        seen.popitem(last=False)


def _recently_clear(client: Client, run_id: str) -> bool:
    seen = _answered.get(client)
    at = seen.get(run_id) if seen is not None else None
    return at is not None and time.monotonic() - at < CLEAR_FOR


async def encrypted(client: Client, run_id: str, rpc_timeout: timedelta | None = None) -> bool:
    """Whether the run's payloads are encrypted (its memo is): a client without the key must not
    write into it in clear, nor could it read the answer."""
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

    from worker.codec import ENCODING

    request = DescribeWorkflowExecutionRequest(namespace=client.namespace)
    request.execution.workflow_id = run_id
    try:  # the raw call: nothing decoded, one round trip
        description = await client.workflow_service.describe_workflow_execution(request, timeout=rpc_timeout)
    except RPCError:
        return False  # unknown or unreachable: the update itself reports it
    fields = description.workflow_execution_info.memo.fields
    return any(payload.metadata.get("encoding") == ENCODING for payload in fields.values())


class InputRefused(ValueError):
    """An argument too large to send (a note over 32 KB): nothing was sent."""


async def update(client: Client, run_id: str, name: str, arg: Any, result_type: type,
                 rpc_timeout: timedelta | None = None):
    from worker.bounds import update_refusal

    refusal = update_refusal([arg]) if arg is not None else None
    if refusal:
        raise InputRefused(refusal)
    if client.data_converter.payload_codec is None and not _recently_clear(client, run_id) \
            and await encrypted(client, run_id, rpc_timeout):
        raise InputRefused(f"{run_id} is encrypted: set ITSM_ENCRYPTION_KEY to write to it (nothing was sent)")
    handle = client.get_workflow_handle(run_id)
    args = [] if arg is None else [arg]
    try:
        answer = await handle.execute_update(name, args=args, result_type=result_type, rpc_timeout=rpc_timeout)
    except WorkflowUpdateFailedError as err:
        if getattr(err.cause, "type", None) != WRONG_STATE:
            raise
        # Refused for the run's state: its validator may have run a step behind what the user
        # was shown (the event that moved the run on came in the same task). Once more, signed
        # afresh.
        await asyncio.sleep(STATE_RETRY_DELAY)
        answer = await handle.execute_update(name, args=args, result_type=result_type, rpc_timeout=rpc_timeout)
    if answer is not None:
        answered_clear(client, run_id)
    return answer


STATE_RETRY_DELAY = 0.5


async def status(client: Client, run_id: str, result_type: type, rpc_timeout: timedelta | None = None):
    """The run's status: see `read`."""
    return (await read(client, run_id, result_type, rpc_timeout)).status


class Read(NamedTuple):
    """A status, and when it was not read live: the time it was published and why."""

    status: Any
    as_of: str | None = None
    stale: str | None = None


class Unread(Exception):
    """No worker answered, and the run has published no status yet."""


QUERY_TIMEOUT = timedelta(seconds=5)


async def read(client: Client, run_id: str, result_type: type[BaseModel], rpc_timeout: timedelta | None = None) -> Read:
    """Closed runs are read from their result; open ones are queried when a worker polls
    their queue and its workflow task is not failing, else (or when the query gets no
    answer in QUERY_TIMEOUT) read from the status the run keeps in its memo, marked with
    its time and why it may be stale. Reads need no worker."""
    from workflows.base import MEMO_STATUS

    handle = client.get_workflow_handle(run_id, result_type=result_type)
    description = await handle.describe(rpc_timeout=rpc_timeout)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return Read(await handle.result(rpc_timeout=rpc_timeout))
    raw = description.raw_description
    failing = raw.HasField("pending_workflow_task") and raw.pending_workflow_task.attempt > 1
    if description.status != WorkflowExecutionStatus.RUNNING:
        closed = description.status.name if description.status else "unspecified"
        reason = f"the run is {closed.lower().replace('_', ' ')}"
    elif failing:
        reason = f"its workflow task is failing (attempt {raw.pending_workflow_task.attempt}: itsm runs show {run_id})"
    elif not await _polled(client, description.task_queue, rpc_timeout):
        reason = "no worker is polling its task queue (is `itsm worker` running?)"
    else:
        wait = min(rpc_timeout or QUERY_TIMEOUT, QUERY_TIMEOUT)
        try:  # bounded as a whole: the client retries some RPC failures within it
            return Read(await asyncio.wait_for(handle.query("status", result_type=result_type, rpc_timeout=wait),
                                               wait.total_seconds()))
        except (RPCError, asyncio.TimeoutError):
            reason = f"no worker answered in {wait.total_seconds():.0f}s"
    published = (await description.memo()).get(MEMO_STATUS)
    if not published:
        if description.status != WorkflowExecutionStatus.RUNNING:  # closed before it published: replay it
            return Read(await handle.query("status", result_type=result_type, rpc_timeout=rpc_timeout))
        raise Unread(f"{run_id} has published no status yet, and {reason}")
    return Read(result_type.model_validate(published["value"]), as_of=published["at"], stale=reason)


async def worker_polls(client: Client, queue: str, patience: float = 10.0) -> bool:
    """Whether a worker polls `queue`, waiting up to `patience` seconds: one re-polls a few
    seconds after the server restarts, and one just started (`itsm worker &` before a submit)
    takes seconds to poll."""
    for _ in range(int(patience / 0.5)):
        if await _polled(client, queue, None, strict=True):
            return True
        await asyncio.sleep(0.5)
    return False


async def pollers(client: Client, queue: str, rpc_timeout: timedelta | None = None) -> list:
    """The workflow pollers the server lists for `queue` (identity, last access): a worker that
    died lately stays listed for about 5 minutes."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    request = DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue),
                                       task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
    return list((await client.workflow_service.describe_task_queue(request, timeout=rpc_timeout)).pollers)


async def _polled(client: Client, queue: str, rpc_timeout: timedelta | None, strict: bool = False) -> bool:
    """Whether a worker polls `queue` (one that died lately is still listed: the query's
    timeout covers it); True when the server cannot tell (`strict`: its error)."""
    try:
        return bool(await pollers(client, queue, rpc_timeout))
    except RPCError as err:
        # A start asks strictly: the server's trouble is the answer; a server that has no such
        # call (the time-skipping test server) cannot tell.
        if strict and err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        return True
