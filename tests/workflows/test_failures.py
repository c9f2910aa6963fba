"""Activity failures are retried with backoff, visible while retrying (pending activity
attempt + last failure, what `itsm runs show` prints), and surfaced, never dropped."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cli import change_ops
from cli.change_submit import build_change
from cli.ids import new_id
from definitions import registry
from definitions.change import ChangeType
from tests.workflows.helpers import running_worker
from workflows.change_models import ChangeState


async def test_smtp_down_is_retried_visible_then_surfaced(env, task_queue, db, channel):
    channel.fail_times = 1000
    now = await env.get_current_time()
    change = build_change(change_id=new_id("CHG", now), title="t", cis=["web-01"], change_type=ChangeType.NORMAL,
                          start=now + timedelta(hours=1), end=now + timedelta(hours=2), requested_by="alice", now=now,
                          policy=registry.get("acme-demo"))
    async with running_worker(env, task_queue, db, channel):
        started = asyncio.create_task(change_ops.submit(env.client, change, task_queue))
        pending = []
        for _ in range(50):
            await env.sleep(timedelta(seconds=2))
            description = await env.client.get_workflow_handle(change.id).describe()
            pending = [p for p in description.raw_description.pending_activities if p.attempt >= 2]
            if pending:
                break
        assert pending and pending[0].activity_type.name == "notify"
        assert pending[0].last_failure.message == "channel down"
        for _ in range(200):
            if started.done():
                break
            await env.sleep(timedelta(seconds=5))
        status = await started
        # An open run with no worker would freeze the session's fake clock for later tests.
        await env.client.get_workflow_handle(change.id).terminate("test finished")
    assert status.state == ChangeState.AUTHORIZE  # the process goes on without the channel
    assert status.notices == ["notification submitted to alice failed: channel down",
                              "notification approval.1.requested to change-managers failed: channel down"]
    assert channel.sent == []
