"""Helpers for change workflow tests: submissions at exact fake times."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

from cli import change_ops
from cli.change_submit import build_change
from cli.ids import new_id
from definitions.change import ChangeType
from workflows.change_models import ApproveInput, ChangeStatus, CompleteInput, Outcome
from worker.main import build_worker


@asynccontextmanager
async def running_worker(env, task_queue, db, channel):
    async with build_worker(env.client, task_queue, db=db, channel=channel):
        yield


async def submit(env, task_queue, *, cis=("web-01",), change_type=ChangeType.NORMAL, start_in=timedelta(hours=1),
                 duration=timedelta(hours=1), requested_by="alice", policy=None, **kwargs) -> ChangeStatus:
    """Submit a change starting `start_in` from the server's (fake) now."""
    from definitions import registry

    now = await env.get_current_time()
    change = build_change(
        change_id=new_id("CHG", now), title=kwargs.pop("title", "Patch the web tier"), cis=list(cis),
        change_type=change_type, start=now + start_in, end=now + start_in + duration, requested_by=requested_by,
        now=now, policy=policy or registry.get("acme-demo"), **kwargs,
    )
    return await change_ops.submit(env.client, change, task_queue)


async def approve(env, change_id, actor, comment="") -> ChangeStatus:
    return await change_ops.update(env.client, change_id, "approve", ApproveInput(actor=actor, comment=comment))


async def complete(env, change_id, actor, outcome=Outcome.SUCCESSFUL, notes="done") -> ChangeStatus:
    return await change_ops.update(env.client, change_id, "complete", CompleteInput(actor=actor, outcome=outcome, notes=notes))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
