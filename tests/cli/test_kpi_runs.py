"""KPIs from real runs: incidents, changes and a request driven to known outcomes at exact
fake times on the time-skipping server, then read back through the search attributes the
workflows published. The Java test server has no ListWorkflowExecutions, so rows come from
DescribeWorkflowExecution (the same fields, through the same `run_from_execution`);
test_kpi_report.py covers the list query on a real dev server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from definitions.change import ChangeType
from itsmflow.app import request_ops
from itsmflow.app.kpi_source import run_from_execution
from itsmflow.app.kpis import compute
from itsmflow.app.request_submit import build_request
from tests.workflows.helpers import Changes, approve, complete, reject, running_worker
from tests.workflows.incident_helpers import Incidents, skip_to
from workflows.change_models import ApproveInput, Outcome
from workflows.incident_models import IncidentResolveInput
from workflows.models import ActorInput

MINUTE = timedelta(minutes=1)


def close_to(value: float | None, seconds: float) -> bool:
    """A fake time is exact up to the processing of one workflow task."""
    return value is not None and abs(value - seconds) < 2


@pytest.fixture
async def tracked(env, task_queue):
    incidents, changes, others = Incidents(env, task_queue), Changes(env, task_queue), []
    yield incidents, changes, others
    await incidents.close_all()
    await changes.terminate_open()
    for run_id in reversed(others):  # items before their request: time stays unlocked
        handle = env.client.get_workflow_handle(run_id)
        if (await handle.describe()).status.name == "RUNNING":
            await handle.terminate("test finished")


async def test_kpis_from_published_search_attributes(env, task_queue, db, channel, tracked):
    incidents, changes, others = tracked
    async with running_worker(env, task_queue, db, channel):
        answered = await incidents.open()
        breached = await incidents.open()
        opened = (await env.client.get_workflow_handle(answered.id).describe()).start_time

        standard = await changes.submit(cis=("web-02",), change_type=ChangeType.STANDARD,
                                        template="restart-web-server", start_in=timedelta(0))
        await complete(env, standard.id, "frank")
        emergency = await changes.submit(cis=("lb-01",), change_type=ChangeType.EMERGENCY, start_in=timedelta(0))
        await approve(env, emergency.id, "carol")
        await complete(env, emergency.id, "dave", outcome=Outcome.BACKED_OUT)
        rejected = await changes.submit()
        await reject(env, rejected.id, "bob", "not now")

        request = await request_ops.submit(env.client, build_request(
            item_name="vpn-access", raw={"duration": "5", "reason": "travel"}, requested_by="alice"), task_queue)
        item_id = request.items[0].id
        others += [request.id, item_id]
        requested = (await env.client.get_workflow_handle(request.id).describe()).start_time

        await skip_to(env, opened + 10 * MINUTE)
        await incidents.act(answered.id, "acknowledge", ActorInput(actor="dave"))
        await skip_to(env, opened + 20 * MINUTE)  # the other one breached its 15-minute response SLA
        await incidents.act(breached.id, "acknowledge", ActorInput(actor="dave"))
        await skip_to(env, opened + 60 * MINUTE)
        await incidents.act(answered.id, "resolve", IncidentResolveInput(actor="dave", code="restarted"))
        await skip_to(env, requested + 120 * MINUTE)
        await request_ops.decide(env.client, request.id, "approve", ApproveInput(actor="dave"))

        ids = [answered.id, breached.id, standard.id, emergency.id, rejected.id, request.id, item_id]
        runs = [run_from_execution(await env.client.get_workflow_handle(i).describe()) for i in ids]
        now = await env.get_current_time()
    report = compute(runs, opened - MINUTE, now + MINUTE)

    by_id = {run.id: run for run in runs}
    assert (by_id[answered.id].outcome, by_id[answered.id].breaches) == ("restarted", ())
    assert (by_id[breached.id].outcome, by_id[breached.id].breaches) == (None, ("response",))
    assert [by_id[c.id].outcome for c in (standard, emergency, rejected)] == ["successful", "backed-out", "rejected"]
    assert (by_id[request.id].outcome, by_id[item_id].outcome) == ("fulfilled", "fulfilled")

    p1 = report["incidents"]["by_priority"]["P1"]
    assert (p1["opened"], p1["acknowledged"], p1["resolved"]) == (2, 2, 1)
    assert close_to(p1["mtta_seconds"], 15 * 60) and close_to(p1["mttr_seconds"], 60 * 60), p1
    assert p1["response_sla"] == {"met": 1, "breached": 1, "pending": 0, "compliance_percent": 50.0}
    assert p1["resolution_sla"] == {"met": 1, "breached": 0, "pending": 1, "compliance_percent": 100.0}
    assert report["changes"] == {
        "total": 3, "open": 0, "by_type": {"normal": 1, "standard": 1, "emergency": 1},
        "outcomes": {"successful": 1, "failed": 0, "backed-out": 1, "rejected": 1, "canceled": 0},
        "success_rate_percent": 50.0, "emergency_share_percent": 33.33,
    }
    requests = report["requests"]
    assert (requests["total"], requests["open"], requests["outcomes"]["fulfilled"]) == (1, 0, 1)
    assert close_to(requests["fulfillment_seconds"]["p50"], 120 * 60) and requests["fulfillment_seconds"]["count"] == 1
    assert requests["item_fulfillment_sla"] == {"met": 1, "breached": 0, "pending": 0, "compliance_percent": 100.0}
    assert report["backlog"]["total"] == 1  # the breached incident; the VPN request waits for expiry, fulfilled
    assert report["backlog"]["by_process"]["incident"]["by_state"]["in_progress"]["<1d"] == 1
    assert (sum(d["opened"] for d in report["trend"]), sum(d["resolved"] for d in report["trend"])) == (2, 1)
    assert report["excluded"] == {}
