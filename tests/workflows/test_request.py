"""Request fulfillment under time skipping: every catalog item end to end, approval
reuse, DAG order and parallelism, manual fallback, cancel compensation, VPN expiry."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from activities.fulfillment import FulfillmentActivities
from definitions.catalog import CatalogItem, FulfillmentTask, TaskKind
from itsmflow.app import request_ops
from itsmflow.app.ids import new_id
from itsmflow.app.request_submit import build_request
from tests.workflows.helpers import accepted_updates, refusal
from worker.main import build_worker
from workflows.change_models import ApproveInput, RejectInput
from workflows.request_models import CancelRequestInput, ItemPlan, TaskActionInput


async def assert_refused(awaitable, text: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await awaitable
    assert text in str(refused.value.cause), refused.value.cause


class Requests:
    def __init__(self, env, task_queue):
        self.env, self.task_queue, self.ids = env, task_queue, []

    async def submit(self, item: str, requested_by: str = "alice", requested_for: str | None = None, **variables):
        request = build_request(item_name=item, raw={k: str(v) for k, v in variables.items()},
                                requested_by=requested_by, requested_for=requested_for)
        return await self.start(request)

    async def start(self, request):
        self.ids += [request.id, *(p.id for p in request.plans)]
        return await request_ops.submit(self.env.client, request, self.task_queue)

    async def item(self, item_id):
        return await request_ops.status(self.env.client, item_id)

    async def open_task(self, item_id, name):
        from temporalio.service import RPCError

        for _ in range(50):
            try:
                task = next(t for t in (await self.item(item_id)).tasks if t.name == name)
            except RPCError:  # the item has not started yet
                await self.env.sleep(timedelta(seconds=1))
                continue
            if task.task_id and task.state.value == "open":
                self.ids.append(task.task_id)
                return task.task_id
            await self.env.sleep(timedelta(seconds=1))
        raise AssertionError(f"task {name} of {item_id} never opened")

    async def until(self, run_id, state):
        for _ in range(60):
            status = await request_ops.status(self.env.client, run_id)
            if status.state.value == state:
                return status
            await self.env.sleep(timedelta(seconds=1))
        raise AssertionError(f"{run_id} never reached {state}: {status.state.value}")

    async def do_task(self, task_id, actor, name="complete", notes="done"):
        return await request_ops.task_action(self.env.client, task_id, name, TaskActionInput(actor=actor, notes=notes))

    async def settle(self):
        """Call with the worker still running: wait until no tracked run has an activity in
        flight (the time-skipping server keeps its clock locked when a run is terminated
        mid-activity)."""
        for run_id in self.ids:
            handle = self.env.client.get_workflow_handle(run_id)
            for _ in range(60):
                description = await handle.describe()
                if description.status.name != "RUNNING" or not description.raw_description.pending_activities:
                    break
                await self.env.sleep(timedelta(seconds=1))

    async def cleanup(self):
        # Children first: the time-skipping server keeps time locked for a child whose
        # parent was terminated before it.
        for run_id in reversed(self.ids):
            handle = self.env.client.get_workflow_handle(run_id)
            try:
                if (await handle.describe()).status.name == "RUNNING":
                    await handle.terminate("test finished")
            except Exception:
                pass


@pytest.fixture
async def requests(env, task_queue):
    tracker = Requests(env, task_queue)
    yield tracker
    await tracker.cleanup()


@asynccontextmanager
async def worker(env, task_queue, db, channel, failing=()):
    async with build_worker(env.client, task_queue, db=db, channel=channel,
                            fulfillment=FulfillmentActivities(db, failing=set(failing))):
        yield


def records(db):
    with db.transaction() as cur:
        return cur.all("SELECT action, resource, detail, undone_at IS NOT NULL FROM fulfillment_record "
                       "ORDER BY created_at, action")


async def test_laptop_manual_then_automated(env, task_queue, db, channel, requests):
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("laptop", model="pro-16", justification="dev work")
        assert request.state.value == "fulfilling"
        item_id = request.items[0].id
        task_id = await requests.open_task(item_id, "prepare")
        await assert_refused(requests.do_task(task_id, "dave"), "not in group 'service-desk'")
        await requests.do_task(task_id, "erin", notes="handed over")
        final = await request_ops.status(env.client, request.id)
        await env.client.get_workflow_handle(request.id).result()
        final = await request_ops.status(env.client, request.id)
        item = await requests.item(item_id)
    assert final.state.value == "fulfilled" and item.state.value == "fulfilled"
    assert [(t.name, t.state.value, t.by) for t in item.tasks] == [("prepare", "done", "erin"), ("record-asset",
                                                                                                 "done", None)]
    assert records(db) == [("record_asset", f"laptop:{item_id}", "pro-16", 0)]
    assert "task.assigned" not in channel.keys() and "assigned" in channel.keys() and "fulfilled" in channel.keys()


async def test_vpn_needs_network_approval_and_expires_exactly(env, task_queue, db, channel, requests):
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("vpn-access", duration=2, reason="travel")
        assert request.state.value == "approval"
        await assert_refused(request_ops.decide(env.client, request.id, "approve", ApproveInput(actor="alice")),
                             "segregation of duties")
        await assert_refused(request_ops.decide(env.client, request.id, "approve", ApproveInput(actor="erin")),
                             "not in group 'network'")
        item = await request_ops.decide(env.client, request.id, "approve", ApproveInput(actor="dave"))
        assert item.state.value == "fulfilled" and records(db) == [("grant_vpn", "vpn", "2 days", 0)]
        opened = item.events[0].time
        assert item.expires_at == opened + timedelta(days=2)
        await env.sleep(item.expires_at - await env.get_current_time() - timedelta(minutes=1))
        assert records(db)[0][3] == 0
        await env.sleep(timedelta(minutes=2))
        item = await requests.item(item.id)
    assert records(db)[0][3] == 1
    expired = next(e for e in item.events if e.action == "expired")
    assert abs(expired.time - item.expires_at) < timedelta(seconds=1)
    assert [t.state.value for t in item.tasks] == ["compensated"]


async def test_vpn_rejected_rolls_up(env, task_queue, db, channel, requests):
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("vpn-access", duration=5, reason="x")
        item = await request_ops.decide(env.client, request.id, "reject", RejectInput(actor="frank", reason="no"))
        assert item.state.value == "rejected" and "rejected by frank" in item.reason
        await env.client.get_workflow_handle(request.id).result()
        final = await request_ops.status(env.client, request.id)
    assert final.state.value == "rejected" and records(db) == []


@pytest.mark.parametrize("role, approval", [("read", False), ("write", True)])
async def test_db_access_approval_depends_on_role(env, task_queue, db, channel, requests, role, approval):
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("db-access", database="db-prod-1", role=role)
        item_id = request.items[0].id
        assert request.state.value == ("approval" if approval else "fulfilling")
        if approval:
            await request_ops.decide(env.client, item_id, "approve", ApproveInput(actor="grace"))
        task_id = await requests.open_task(item_id, "verify")
        assert records(db) == [("grant_db", "db-prod-1", role, 0)]
        await requests.do_task(task_id, "grace")
        await env.client.get_workflow_handle(request.id).result()
        assert (await requests.item(item_id)).state.value == "fulfilled"


async def test_db_write_for_the_only_db_admin_cannot_be_approved_by_her(env, task_queue, db, channel, requests):
    """Segregation of duties covers who a request is for: grace, the only db-admin, may not
    approve write access for herself, so the level can never complete and rejects at once."""
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("db-access", requested_for="grace", database="db-prod-1", role="write")
        item_id = request.items[0].id
        item = await requests.until(item_id, "rejected")
        final = await requests.until(request.id, "rejected")
    assert item.reason == "level 1 'db-admins' cannot complete: 0 eligible approver(s) in 'db-admins', 1 needed"
    assert item.events[-1].time - item.events[0].time < timedelta(seconds=1)
    assert "approval.1.requested" not in channel.keys() and final.items[0].state.value == "rejected"
    assert records(db) == []


async def test_vpn_for_a_network_member_needs_the_other_one(env, task_queue, db, channel, requests):
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("vpn-access", requested_for="dave", duration=2, reason="travel")
        item_id = request.items[0].id
        decision = request_ops.decide(env.client, item_id, "approve", ApproveInput(actor="dave"))
        assert await refusal(decision) == "dave is who this is for and cannot approve it (segregation of duties)"
        item = await request_ops.decide(env.client, item_id, "approve", ApproveInput(actor="frank"))
        assert await accepted_updates(env, item_id) == [("approve", "frank")]
    assert item.state.value == "fulfilled" and [d.user for d in item.approvals[0].decisions] == ["frank"]


async def test_onboarding_dag_order_and_parallelism(env, task_queue, db, channel, requests):
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("onboarding", name="Zoe Zhang", start_date="2026-12-01", team="web")
        ids = {ref.item: ref.id for ref in request.items}
        laptop_task = await requests.open_task(ids["laptop"], "prepare")
        status = await request_ops.status(env.client, request.id)
        states = {ref.item: ref.state.value for ref in status.items}
        assert states == {"account": "fulfilled", "laptop": "fulfilling", "vpn-access": "approval",
                          "welcome": "requested"}
        await request_ops.decide(env.client, request.id, "approve", ApproveInput(actor="dave"))
        await requests.do_task(laptop_task, "frank")
        status = await requests.until(request.id, "fulfilled")
        assert (await env.client.get_workflow_handle(request.id).describe()).status.name == "RUNNING"
    started = [e.details.split()[1] for e in status.events if e.action == "item"]
    assert started[0] == "account" and set(started[1:3]) == {"laptop", "vpn-access"} and started[3] == "welcome"
    starts = {e.details.split()[1]: e.time for e in status.events if e.action == "item"}
    assert abs(starts["laptop"] - starts["vpn-access"]) < timedelta(seconds=1)  # both right after account
    assert status.state.value == "fulfilled"
    welcome = [m for m in channel.sent if m.key.endswith(":task.send")]
    assert len(welcome) == 1 and welcome[0].subject.endswith("Welcome, Zoe Zhang!")


async def test_automation_falls_back_to_a_manual_task_after_retries(env, task_queue, db, channel, requests):
    async with worker(env, task_queue, db, channel, failing={"grant_vpn"}):
        request = await requests.submit("vpn-access", duration=3, reason="x")
        item = await request_ops.decide(env.client, request.id, "approve", ApproveInput(actor="dave"))
        task_id = await requests.open_task(item.id, "grant")
        item = await requests.item(item.id)
        assert item.tasks[0].fallback and item.tasks[0].group == "network"
        assert any(e.action == "fallback" and "backend unavailable" in e.details for e in item.events)
        await requests.do_task(task_id, "frank", notes="granted by hand")
        item = await requests.item(item.id)
        await requests.settle()
    assert item.state.value == "fulfilled" and records(db) == []


async def test_cancel_compensates_completed_automation_in_reverse(env, task_queue, db, channel, requests):
    item = CatalogItem(name="kit", title="Kit", tasks=[
        FulfillmentTask(name="account", kind=TaskKind.AUTOMATED, action="create_account", group="service-desk",
                        title="account"),
        FulfillmentTask(name="vpn", kind=TaskKind.AUTOMATED, action="grant_vpn", group="network", title="vpn",
                        after=["account"]),
        FulfillmentTask(name="handover", kind=TaskKind.MANUAL, group="service-desk", title="hand over",
                        after=["vpn"]),
    ])
    base = build_request(item_name="laptop", raw={"model": "pro-16", "justification": "x"}, requested_by="alice")
    plan = ItemPlan(id=new_id("RITM"), item=item, variables={"name": "Zoe", "team": "web", "duration": 5})
    request = base.model_copy(update={"item": "kit", "plans": [plan]})
    async with worker(env, task_queue, db, channel):
        await requests.start(request)
        await requests.open_task(plan.id, "handover")
        await assert_refused(request_ops.cancel(env.client, request.id, CancelRequestInput(actor="dave")),
                             "only the requester or service-desk")
        final = await request_ops.cancel(env.client, request.id, CancelRequestInput(actor="alice", reason="left"))
        item_status = await requests.item(plan.id)
    assert final.state.value == "canceled"
    compensations = [e.details for e in item_status.events if e.action == "compensated"]
    assert compensations == ["vpn (left)", "account (left)"]
    assert [t.state.value for t in item_status.tasks] == ["compensated", "compensated", "canceled"]
    assert sorted(r[3] for r in records(db)) == [1, 1]


async def test_fulfillment_sla_breach_is_notified_once_at_the_due_time(env, task_queue, db, channel):
    from itsmflow.app.kpi_source import run_from_execution
    from tests.workflows.incident_helpers import next_weekday_at, skip_to

    requests = Requests(env, task_queue)
    await skip_to(env, next_weekday_at(await env.get_current_time(), 0, 9))  # Monday 09:00, business calendar
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("laptop", model="pro-16", justification="x")
        item_id = request.items[0].id
        await requests.open_task(item_id, "prepare")
        item = await requests.item(item_id)
        opened = item.events[0].time
        # Opened a few ms after Monday 09:00: 16 business hours end at the same clock time on Wednesday.
        assert item.sla.due == opened + timedelta(days=2)
        await env.sleep(item.sla.due - await env.get_current_time() + timedelta(minutes=5))
        item = await requests.item(item_id)
        visible = run_from_execution(await env.client.get_workflow_handle(item_id).describe())
    breach = [e for e in item.events if e.action == "sla"]
    assert len(breach) == 1 and abs(breach[0].time - item.sla.due) < timedelta(seconds=1)
    assert item.sla.breached and channel.keys().count("sla.breached") == 1
    assert (visible.state, visible.breaches) == ("fulfilling", ("fulfillment",))  # for `itsm report kpis`


async def test_failed_task_fails_the_item_and_undoes_its_automation(env, task_queue, db, channel, requests):
    async with worker(env, task_queue, db, channel):
        request = await requests.submit("db-access", database="db-prod-1", role="read")
        item_id = request.items[0].id
        task_id = await requests.open_task(item_id, "verify")
        await assert_refused(requests.do_task(task_id, "grace", name="fail", notes=" "), "needs --notes")
        failed = await requests.do_task(task_id, "grace", name="fail", notes="role missing on replica")
        assert failed.state.value == "failed"
        final = await requests.until(request.id, "failed")
        item = await requests.item(item_id)
    assert item.state.value == "failed"
    assert [(t.name, t.state.value) for t in item.tasks] == [("grant", "compensated"), ("verify", "failed")]
    assert [e.details for e in item.events if e.action == "compensated"] == ["grant (a task failed)"]
    assert records(db) == [("grant_db", "db-prod-1", "read", 1)] and final.items[0].state.value == "failed"


async def test_an_item_canceled_while_its_task_starts_stops_that_task(env, task_queue, db, channel):
    """The race made deterministic: a worker interceptor holds the manual task's child start
    until the item is canceled, so the plan's loop sees the cancel while that task is starting
    (not yet a child it can tell). The task is told once started, and the request ends
    canceled; before, the item waited for that task for good."""
    import asyncio

    from temporalio import workflow
    from temporalio.worker import (
        Interceptor,
        StartChildWorkflowInput,
        WorkflowInboundInterceptor,
        WorkflowInterceptorClassInput,
        WorkflowOutboundInterceptor,
    )

    from workflows.item import ItemWorkflow

    class HoldTaskStart(Interceptor):
        def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput):
            class Inbound(WorkflowInboundInterceptor):
                def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                    class Outbound(WorkflowOutboundInterceptor):
                        async def start_child_workflow(self, input: StartChildWorkflowInput):
                            item = workflow.instance()
                            if isinstance(item, ItemWorkflow) and input.workflow == "ManualTaskWorkflow":
                                await workflow.wait_condition(lambda: item._cancel is not None)
                            return await super().start_child_workflow(input)

                    super().init(Outbound(outbound))

            return Inbound

    request = build_request(item_name="laptop", raw={"model": "pro-16", "justification": "x"}, requested_by="alice")
    item_id = request.plans[0].id
    async with build_worker(env.client, task_queue, db=db, channel=channel, interceptors=[HoldTaskStart()]):
        await request_ops.submit(env.client, request, task_queue)
        while (await request_ops.status(env.client, item_id)).state.value != "fulfilling":
            await asyncio.sleep(0.05)
        status = await asyncio.wait_for(
            request_ops.cancel(env.client, request.id, CancelRequestInput(actor="alice", reason="not needed")), 30)
        item = await request_ops.status(env.client, item_id)
        history = await env.client.get_workflow_handle(item_id).fetch_history()
    assert status.state.value == "canceled" and item.state.value == "canceled"
    [task] = [t for t in item.tasks if t.task_id]
    assert task.state.value == "canceled"
    # The patched path replays (with the interceptor that timed it so), and its marker is there.
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from itsmflow.app.audit import patch_markers
    from worker.main import build_replayer

    assert "item-stop-starting-task" in patch_markers(history)
    config = build_replayer().config()
    replayer = Replayer(**{**config, "interceptors": [HoldTaskStart(), *config.get("interceptors", [])]})
    await replayer.replay_workflow(WorkflowHistory.from_json(item_id, history.to_json()))
