from datetime import timedelta

from cli import change_ops
from tests.workflows.helpers import approve, complete, running_worker, submit
from workflows.change_models import ChangeState


async def test_low_risk_change_end_to_end(env, task_queue, db, channel):
    async with running_worker(env, task_queue, db, channel):
        status = await submit(env, task_queue)
        assert status.state == ChangeState.AUTHORIZE
        assert status.risk == "low"
        status = await approve(env, status.id, "bob", "ok")
        assert status.state == ChangeState.SCHEDULED
        await env.sleep(timedelta(hours=1, seconds=1))
        status = await change_ops.status(env.client, status.id)
        assert status.state == ChangeState.IMPLEMENT
        status = await complete(env, status.id, "carol")
        assert status.state == ChangeState.CLOSED
        assert status.close_code == "successful"
