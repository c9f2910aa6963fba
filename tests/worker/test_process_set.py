"""Every worker on a queue serves the same set of processes (issue 15): a worker refuses to
join a queue where a live worker serves another set; one that died lately (the server lists
its poller for minutes) does not count."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from worker.main import IDENTITY_MARK, MismatchedWorkers, build_worker, check_process_set, worker_identity


async def polled_by(live, task_queue: str, identity: str) -> None:
    from itsmflow.app.ops import pollers

    for _ in range(100):
        if any(p.identity == identity for p in await pollers(live.client, task_queue)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{identity} never polled {task_queue}")


async def test_a_worker_refuses_a_queue_a_live_worker_with_another_set_polls(live, task_queue, db, channel):
    other = f"1@elsewhere {IDENTITY_MARK}0123456789ab"
    stuck = f"busy-{uuid.uuid4()}"
    async with build_worker(live.client, task_queue, db=db, channel=channel, identity=other):
        await polled_by(live, task_queue, other)
        # A task nobody can run keeps the other worker polling (its last access moves on).
        await live.client.start_workflow("NoSuchWorkflow", id=stuck, task_queue=task_queue)
        try:
            with pytest.raises(MismatchedWorkers) as refused:
                await check_process_set(live.client, task_queue, worker_identity(), live_poll=20)
        finally:
            await live.client.get_workflow_handle(stuck).terminate("test finished")
    assert str(refused.value) == (
        f"worker 1@elsewhere on task queue {task_queue!r} serves another set of processes (0123456789ab; this "
        f"worker's is {worker_identity().rpartition(IDENTITY_MARK)[2]}): every worker on a queue must serve the "
        "same processes")


async def test_a_worker_that_stopped_does_not_count(live, task_queue, db, channel):
    other = f"2@elsewhere {IDENTITY_MARK}ba9876543210"
    async with build_worker(live.client, task_queue, db=db, channel=channel, identity=other):
        await polled_by(live, task_queue, other)
    # Still listed as a poller, but it never polls again.
    await check_process_set(live.client, task_queue, worker_identity(), live_poll=3)
    same = worker_identity()
    async with build_worker(live.client, task_queue, db=db, channel=channel, identity=same.replace("@", "0@", 1)):
        await check_process_set(live.client, task_queue, same, live_poll=3)  # the same set: welcome
