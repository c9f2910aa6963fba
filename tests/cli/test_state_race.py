"""A user never sees a refusal for a state the system already showed them (issue 13).

The race, made deterministic: a change's scheduled start passes while no worker runs
workflows, and a completion arrives before one is back. The worker then gets both in one
workflow task, and the SDK applies updates before timers: the validator sees `scheduled`,
though the task moves the run to `implement`, as the server already knew it would. The
application layer sends a state refusal once more, signed afresh, and the completion lands.

(Runs on `itsm-baseline-2` call the CMDB as local activities, inside the workflow task, so
their results no longer race an update; a timer, a webhook or an automated task still can.)"""

import asyncio
from datetime import datetime, timedelta, timezone

from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowUpdateInput

from definitions.change import ChangeType
from itsmflow.app import change_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from worker.main import build_worker
from workflows.change_models import ChangeState, CompleteInput, Outcome


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


async def test_a_completion_validated_a_step_behind_lands(live, task_queue, db, channel):
    counted = CountUpdates()
    client = Client(**{**live.client.config(), "interceptors": [counted]})
    now = datetime.now(timezone.utc)
    start = now + timedelta(seconds=4)
    change = build_change(change_id=new_id("CHG"), title="Restart web-01", cis=["web-01"],
                          change_type=ChangeType.STANDARD, template="restart-web-server", start=start,
                          end=start + timedelta(hours=1), requested_by="alice", now=now)
    async with build_worker(client, task_queue, db=db, channel=channel):
        submitted = await change_ops.submit(client, change, task_queue)
    assert submitted.state == ChangeState.SCHEDULED
    # No worker runs workflows now: the start passes, and the completion waits beside it.
    await asyncio.sleep(max((start - datetime.now(timezone.utc)).total_seconds(), 0) + 1.5)
    done = CompleteInput(actor="erin", outcome=Outcome.SUCCESSFUL)
    completing = asyncio.create_task(change_ops.update(client, change.id, "complete", done))
    await asyncio.sleep(2)
    try:
        async with build_worker(client, task_queue, db=db, channel=channel):
            status = await asyncio.wait_for(completing, 60)
    except BaseException:
        await client.get_workflow_handle(change.id).terminate("test failed")
        raise
    assert counted.sent.count("complete") == 2, counted.sent  # refused for `scheduled` once, then accepted
    assert (status.state, status.implemented_by) == (ChangeState.CLOSED, "erin")
