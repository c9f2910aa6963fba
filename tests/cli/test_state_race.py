"""A user never sees a refusal for a state the system already showed them (issue 13).

The race, made deterministic: a change's conflict check completes while no worker runs
workflows, and an approval arrives before one is back. The worker then gets both in one
workflow task, and the SDK applies updates before activity results: the validator sees
`assess`, though the task moves the run to `authorize`, as the server already knew it
would. The application layer sends a state refusal once more, signed afresh, and the
approval lands."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from temporalio import activity
from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowUpdateInput
from temporalio.worker import Worker

from activities.cmdb import CmdbActivities
from activities.models import Conflict, ConflictQuery
from itsmflow.app import change_ops
from tests.cli.test_reads_without_worker import build_change_input
from worker.main import activities_for, build_worker
from workflows.change_models import ApproveInput


class CountUpdates(Interceptor):
    def __init__(self) -> None:
        self.sent: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        sent = self.sent

        class Outbound(OutboundInterceptor):
            async def start_workflow_update(self, input: StartWorkflowUpdateInput):
                sent.append(input.update)
                return await super().start_workflow_update(input)

        return Outbound(next)


async def test_an_approval_validated_a_step_behind_lands(live, task_queue, db, channel):
    checking, release = threading.Event(), threading.Event()
    cmdb = CmdbActivities(db)

    @activity.defn(name="find_conflicts")
    def held_conflict_check(query: ConflictQuery) -> list[Conflict]:
        checking.set()
        release.wait(60)
        return cmdb.find_conflicts(query)

    counted = CountUpdates()
    client = Client(**{**live.client.config(), "interceptors": [counted]})
    others = [a for a in activities_for(db, channel) if getattr(a, "__name__", "") != "find_conflicts"]
    activities = Worker(client, task_queue=task_queue, activities=[*others, held_conflict_check],
                        activity_executor=ThreadPoolExecutor(4))
    change = build_change_input()
    async with activities:
        async with build_worker(client, task_queue, db=db, channel=channel, no_remote_activities=True):
            submitted = asyncio.create_task(change_ops.submit(client, change, task_queue))
            assert await asyncio.to_thread(checking.wait, 30)
        # No worker runs workflows now: the check completes, and the approval waits beside it.
        release.set()
        await asyncio.sleep(1)
        approval = asyncio.create_task(change_ops.update(client, change.id, "approve", ApproveInput(actor="bob")))
        await asyncio.sleep(2)
        try:
            async with build_worker(client, task_queue, db=db, channel=channel, no_remote_activities=True):
                status = await asyncio.wait_for(approval, 60)
                await asyncio.wait_for(submitted, 60)
        finally:
            await client.get_workflow_handle(change.id).terminate("test finished")
    assert counted.sent.count("approve") == 2, counted.sent  # refused for `assess` once, then accepted
    level = status.approvals[0]
    assert [d.user for d in level.decisions] == ["bob"] and status.state.value in ("authorize", "scheduled")
