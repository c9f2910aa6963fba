"""Record workflow histories for the replay tests.

    python -m tests.histories.record                 # every scenario, time-skipping server
    python -m tests.histories.record --from-server ID [--name NAME]   # a run on TEMPORAL_ADDRESS

Histories are the contract with running processes: re-record only when a change is
deliberately incompatible (and then it needs `workflow.patched`, see README)."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from activities.db import Database
from itsmflow.app import change_ops
from definitions.change import ChangeType
from tests.conftest import RecordingChannel
from tests.workflows.helpers import approve, complete, running_worker, submit
from worker.connect import connect
from worker.server import start_time_skipping
from workflows.change_models import CancelInput, Outcome, RejectInput

FOLDER = Path(__file__).parent


async def _low_risk_closed(env, tq):
    status = await submit(env, tq)
    await approve(env, status.id, "bob", "ok")
    await env.sleep(timedelta(hours=1, seconds=1))
    await complete(env, status.id, "erin")
    return status.id


async def _high_risk_quorum(env, tq):
    status = await submit(env, tq, cis=["db-prod-1"])
    for actor in ("bob", "carol", "dave"):
        await approve(env, status.id, actor)
    await env.sleep(timedelta(hours=1, seconds=1))
    await complete(env, status.id, "grace", outcome=Outcome.FAILED)
    return status.id


async def _rejected(env, tq):
    status = await submit(env, tq, cis=["lb-01"])
    await approve(env, status.id, "bob")
    await change_ops.update(env.client, status.id, "reject", RejectInput(actor="dave", reason="not now"))
    return status.id


async def _standard(env, tq):
    status = await submit(env, tq, cis=["web-02"], change_type=ChangeType.STANDARD, template="restart-web-server")
    await env.sleep(timedelta(hours=1, seconds=1))
    await complete(env, status.id, "frank")
    return status.id


async def _emergency_overrun(env, tq):
    status = await submit(env, tq, cis=["lb-01"], change_type=ChangeType.EMERGENCY, start_in=timedelta(0))
    await approve(env, status.id, "carol")
    await env.sleep(timedelta(hours=2))
    await complete(env, status.id, "dave", outcome=Outcome.BACKED_OUT)
    return status.id


async def _timed_out(env, tq):
    status = await submit(env, tq)
    await env.sleep(timedelta(hours=2))
    return status.id


async def _canceled_while_scheduled(env, tq):
    status = await submit(env, tq)
    await approve(env, status.id, "carol")
    await change_ops.update(env.client, status.id, "cancel", CancelInput(actor="alice", reason="moved"))
    return status.id


async def _incident_lifecycle(env, tq):
    from itsmflow.app import incident_ops
    from itsmflow.app.incident_submit import build_incident
    from workflows.incident_models import IncidentResolveInput
    from workflows.models import ActorInput, ReasonInput

    incident = build_incident(title="lb-01 down", ci="lb-01", impact=1, urgency=2, opened_by="alice")
    status, _ = await incident_ops.open_incident(env.client, incident, tq)
    await env.sleep(timedelta(minutes=20))
    for name, arg in (("acknowledge", ActorInput(actor="dave")), ("hold", ReasonInput(actor="dave", reason="vendor"))):
        await incident_ops.update(env.client, status.id, name, arg)
    await env.sleep(timedelta(hours=1))
    await incident_ops.update(env.client, status.id, "resume", ActorInput(actor="dave"))
    await incident_ops.update(env.client, status.id, "resolve", IncidentResolveInput(actor="dave", code="fixed"))
    await env.sleep(timedelta(days=3, minutes=1))
    return status.id


async def _incident_notice_retried(env, tq):
    """The lifecycle with the channel down for one send: that notification's local attempt
    fails, and it goes out as an activity."""
    return await _incident_lifecycle(env, tq)


_incident_notice_retried.fail_times = 1  # type: ignore[attr-defined]


async def _incident_reassigned_major(env, tq):
    from itsmflow.app import incident_ops
    from itsmflow.app.incident_submit import build_incident
    from workflows.incident_models import EscalateInput, NoteInput, PriorityInput, ReassignInput, IncidentResolveInput
    from workflows.models import ReasonInput

    incident = build_incident(title="checkout slow", ci="web-01", impact=2, urgency=2, opened_by="alice")
    status, _ = await incident_ops.open_incident(env.client, incident, tq)
    for name, arg in (
        ("note", NoteInput(actor="erin", text="looking")), ("escalate", EscalateInput(actor="erin", to_step=2)),
        ("set_priority", PriorityInput(actor="erin", impact=1, urgency=1)),
        ("reassign", ReassignInput(actor="erin", group="db-admins", reason="slow queries")),
        ("declare_major", ReasonInput(actor="grace", reason="payments failing")),
    ):
        await incident_ops.update(env.client, status.id, name, arg)
    await env.sleep(timedelta(hours=2))
    await incident_ops.update(env.client, status.id, "resolve", IncidentResolveInput(actor="grace", code="index"))
    await env.sleep(timedelta(days=3, minutes=1))
    return status.id


async def _request_laptop(env, tq):
    from itsmflow.app import request_ops
    from itsmflow.app.request_submit import build_request
    from workflows.request_models import TaskActionInput

    request = build_request(item_name="laptop", raw={"model": "pro-16", "justification": "dev"}, requested_by="alice")
    await request_ops.submit(env.client, request, tq)
    item_id = request.plans[0].id
    while not (task_id := (await request_ops.status(env.client, item_id)).tasks[0].task_id):
        await env.sleep(timedelta(seconds=1))
    await env.sleep(timedelta(hours=1))
    await request_ops.task_action(env.client, task_id, "complete", TaskActionInput(actor="erin", notes="ok"))
    await env.client.get_workflow_handle(request.id).result()
    return {"request": request.id, "item": item_id, "task": task_id}


async def _request_vpn_fallback_expiry(env, tq):
    from itsmflow.app import request_ops
    from itsmflow.app.request_submit import build_request
    from workflows.change_models import ApproveInput

    request = build_request(item_name="vpn-access", raw={"duration": "2", "reason": "travel"}, requested_by="alice")
    await request_ops.submit(env.client, request, tq)
    await request_ops.decide(env.client, request.id, "approve", ApproveInput(actor="dave"))
    await env.sleep(timedelta(days=2, minutes=1))
    await env.client.get_workflow_handle(request.id).result()
    return {"request": request.id, "item": request.plans[0].id}


async def _request_canceled(env, tq):
    from itsmflow.app import request_ops
    from itsmflow.app.request_submit import build_request
    from workflows.request_models import CancelRequestInput

    request = build_request(item_name="db-access", raw={"database": "db-prod-1", "role": "read"}, requested_by="alice")
    await request_ops.submit(env.client, request, tq)
    item_id = request.plans[0].id
    while (await request_ops.status(env.client, item_id)).tasks[1].state.value != "open":
        await env.sleep(timedelta(seconds=1))
    await request_ops.cancel(env.client, request.id, CancelRequestInput(actor="erin", reason="duplicate"))
    return {"request": request.id, "item": item_id}


async def _problem_suggested_known_error_fixed(env, tq):
    """Three incidents on lb-01 suggest a problem; its known error shows on the fourth; a
    successful change resolves it."""
    from itsmflow.app import incident_ops, problem_ops
    from itsmflow.app.incident_submit import build_incident
    from tests.workflows.problem_helpers import raise_change
    from workflows.problem_models import KnownErrorInput, RootCauseInput
    from workflows.models import ActorInput, ReasonInput

    async def incident(title: str):
        await env.sleep(timedelta(minutes=1))
        opened = build_incident(title=title, ci="lb-01", impact=2, urgency=2, opened_by="alice")
        return (await incident_ops.open_incident(env.client, opened, tq))[0]

    suggesting = [await incident("lb-01 drops connections") for _ in range(3)][-1]
    problem_id = suggesting.problem
    for name, arg in (("investigate", ActorInput(actor="carol")),
                      ("root_cause", RootCauseInput(actor="dave", text="health checker leaks sockets")),
                      ("known_error", KnownErrorInput(actor="dave", workaround="restart the health checker"))):
        await problem_ops.update(env.client, problem_id, name, arg)
    known = await incident("lb-01 flapping")
    change = await raise_change(env, tq, problem_id, "dave")
    await approve(env, change.id, "bob")
    await env.sleep(timedelta(hours=1, seconds=1))
    await complete(env, change.id, "erin")
    while (await problem_ops.status(env.client, problem_id)).state.value != "resolved":
        await asyncio.sleep(0.05)
    await problem_ops.update(env.client, problem_id, "close", ReasonInput(actor="carol"))
    return {"problem": problem_id, "suggesting-incident": suggesting.id, "incident-with-known-error": known.id,
            "change": change.id}


async def _problem_by_hand_canceled(env, tq):
    from itsmflow.app import incident_ops, problem_ops
    from itsmflow.app.incident_submit import build_incident
    from itsmflow.app.problem_submit import build_problem
    from workflows.problem_models import LinkInput, RootCauseInput
    from workflows.models import ReasonInput

    opened = build_incident(title="web-02 slow", ci="web-02", impact=3, urgency=3, opened_by="alice")
    incident, _ = await incident_ops.open_incident(env.client, opened, tq)
    problem = build_problem(title="web-02 slow under load", ci="web-02", opened_by="erin")
    await problem_ops.open_problem(env.client, problem, tq)
    for name, arg in (("link", LinkInput(actor="erin", incident_id=incident.id)),
                      ("root_cause", RootCauseInput(actor="frank", text="undersized pool")),
                      ("cancel", ReasonInput(actor="grace", reason="duplicate of a vendor case"))):
        await problem_ops.update(env.client, problem.id, name, arg)
    return problem.id


async def _incident_deduplicated_reopened(env, tq):
    """Two events with one dedup key (the second attaches), resolve (the router, released,
    ends), reopen and resolve again. Recorded open: the test server skips no time once a
    parent has ended while its abandoned child runs, so auto-close is not waited for."""
    from itsmflow.app import incident_ops
    from itsmflow.app.incident_submit import build_incident
    from workflows.incident_dedup import router_id
    from workflows.incident_models import IncidentResolveInput
    from workflows.models import ActorInput, ReasonInput

    def event(title: str):
        return build_incident(title=title, ci="lb-01", impact=2, urgency=2, opened_by="alice", dedup_key="mon:lb-01")

    status, _ = await incident_ops.open_incident(env.client, event("lb-01 down"), tq)
    attached, was_attached = await incident_ops.open_incident(env.client, event("lb-01 still down"), tq)
    assert was_attached and attached.id == status.id
    for name, arg in (("acknowledge", ActorInput(actor="dave")), ("resolve", IncidentResolveInput(actor="dave", code="fixed"))):
        await incident_ops.update(env.client, status.id, name, arg)
    router = router_id("mon:lb-01")
    await env.client.get_workflow_handle(router).result()
    for name, arg in (("reopen", ReasonInput(actor="alice", reason="back again")),
                      ("resolve", IncidentResolveInput(actor="dave", code="fixed", notes="for real"))):
        await incident_ops.update(env.client, status.id, name, arg)
    return {"incident": status.id, "router": router}


async def _request_vpn_rejected(env, tq):
    from itsmflow.app import request_ops
    from itsmflow.app.request_submit import build_request

    request = build_request(item_name="vpn-access", raw={"duration": "2", "reason": "travel"}, requested_by="alice")
    await request_ops.submit(env.client, request, tq)
    await request_ops.decide(env.client, request.id, "reject", RejectInput(actor="frank", reason="no travel booked"))
    await env.client.get_workflow_handle(request.id).result()
    return {"request": request.id, "item": request.plans[0].id}


async def _request_task_failed(env, tq):
    """The db-access grant runs, its manual verify task fails: the grant is undone and the
    request rolls up to failed."""
    from itsmflow.app import request_ops
    from itsmflow.app.request_submit import build_request
    from workflows.request_models import TaskActionInput

    request = build_request(item_name="db-access", raw={"database": "db-prod-1", "role": "read"}, requested_by="alice")
    await request_ops.submit(env.client, request, tq)
    item_id = request.plans[0].id
    while (verify := (await request_ops.status(env.client, item_id)).tasks[1]).state.value != "open" \
            or not verify.task_id:
        await env.sleep(timedelta(seconds=1))
    await request_ops.task_action(env.client, verify.task_id, "fail", TaskActionInput(actor="grace", notes="no replica"))
    await env.client.get_workflow_handle(request.id).result()
    return {"request": request.id, "item": item_id, "task": verify.task_id}


async def _release_no_go_then_failed(env, tq):
    """The release scenario of tests/workflows/test_release.py: a no-go, then a go where B fails."""
    from datetime import timedelta

    from itsmflow.app import release_ops
    from tests.workflows.test_release import approve_release, plan_and_create, reaches
    from workflows.change_models import Outcome
    from workflows.release_models import GoInput, NoGoInput, ReleaseState

    hour = timedelta(hours=1)
    first, _, first_a = await plan_and_create(env, tq, window_in=2 * hour)
    await approve(env, first_a.id, "bob")
    await approve_release(env, first.id)
    await env.sleep(first.window_start - await env.get_current_time())
    await reaches(env, first.id, ReleaseState.GO_NO_GO)
    await release_ops.update(env.client, first.id, "no_go", NoGoInput(actor="carol", reason="backup not verified"))
    await reaches(env, first.id, ReleaseState.CANCELED)
    second, _, a = await plan_and_create(env, tq, window_in=2 * hour)
    await approve(env, a.id, "bob")
    await approve_release(env, second.id)
    await env.sleep(second.window_start - await env.get_current_time())
    await reaches(env, second.id, ReleaseState.GO_NO_GO)
    await release_ops.update(env.client, second.id, "go", GoInput(actor="carol"))
    await complete(env, a.id, "carol")
    await complete(env, second.changes[1], "carol", outcome=Outcome.FAILED, notes="the API did not start")
    failed = await reaches(env, second.id, ReleaseState.CLOSED)
    await env.client.get_workflow_handle(failed.members[0].back_out).terminate("recorded")
    return {"no-go": first.id, "no-go-joined-change": first_a.id, "no-go-new-change": first.changes[1],
            "failed": second.id, "failed-done-change": a.id, "failed-failed-change": second.changes[1],
            "failed-canceled-change": second.changes[2]}


SCENARIOS = {
    "change-low-risk-closed": _low_risk_closed,
    "change-high-risk-quorum-failed": _high_risk_quorum,
    "change-rejected-at-cab": _rejected,
    "change-standard-closed": _standard,
    "change-emergency-overrun-backed-out": _emergency_overrun,
    "change-approval-timed-out": _timed_out,
    "change-canceled-while-scheduled": _canceled_while_scheduled,
    "incident-p2-ack-hold-resolve-autoclose": _incident_lifecycle,
    "incident-reassigned-major-escalated": _incident_reassigned_major,
    "request-laptop": _request_laptop,
    "request-vpn-approved-expired": _request_vpn_fallback_expiry,
    "request-db-read-canceled": _request_canceled,
    # Recorded after `itsm-verified-start`: the start verdict (patch + local activity marker).
    "verified-change-low-risk-closed": _low_risk_closed,
    "verified-incident-p2-ack-hold-resolve-autoclose": _incident_lifecycle,
    # Recorded after `kpi-attributes`: milestones (ItsmAckedAt, ItsmResolvedAt, ItsmOutcome) upserted.
    "kpi-change-emergency-overrun-backed-out": _emergency_overrun,
    "kpi-incident-p2-ack-hold-resolve-autoclose": _incident_lifecycle,
    "kpi-request-vpn-approved-expired": _request_vpn_fallback_expiry,
    "problem-suggested-known-error-fixed": _problem_suggested_known_error_fixed,
    "problem-by-hand-canceled": _problem_by_hand_canceled,
    # Recorded after `release-router-once`, the newest patch: every branch as new runs take it.
    "patched-change-high-risk-quorum-failed": _high_risk_quorum,
    "patched-change-rejected-at-cab": _rejected,
    "patched-change-standard-closed": _standard,
    "patched-change-approval-timed-out": _timed_out,
    "patched-change-canceled-while-scheduled": _canceled_while_scheduled,
    "patched-incident-reassigned-major-escalated": _incident_reassigned_major,
    "patched-incident-deduplicated-reopened": _incident_deduplicated_reopened,
    "patched-request-laptop": _request_laptop,
    "patched-request-db-read-canceled": _request_canceled,
    "patched-request-vpn-rejected": _request_vpn_rejected,
    "patched-request-db-read-task-failed": _request_task_failed,
    # Recorded after `itsm-memo-status`, `duration-spelling` and `problem-end-once`: the status
    # kept in the memo (one upsert per task), durations spelled `30m`, one problem_ended.
    "memo-change-low-risk-closed": _low_risk_closed,
    "memo-change-approval-timed-out": _timed_out,
    "memo-incident-p2-ack-hold-resolve-autoclose": _incident_lifecycle,
    "memo-incident-deduplicated-reopened": _incident_deduplicated_reopened,
    "memo-problem-suggested-known-error-fixed": _problem_suggested_known_error_fixed,
    "memo-request-laptop": _request_laptop,
    # Recorded after `problem-from-workflow`: the suggesting incident starts its problem itself.
    "child-problem-suggested-known-error-fixed": _problem_suggested_known_error_fixed,
    # Recorded on `itsm-baseline-1` (one patch marker per run, no start verdict without
    # ITSM_AUTH), with side effects queued as typed objects and activities called by reference.
    "baseline-change-low-risk-closed": _low_risk_closed,
    "baseline-change-canceled-while-scheduled": _canceled_while_scheduled,
    "baseline-incident-p2-ack-hold-resolve-autoclose": _incident_lifecycle,
    "baseline-incident-reassigned-major-escalated": _incident_reassigned_major,
    "baseline-incident-deduplicated-reopened": _incident_deduplicated_reopened,
    "baseline-problem-suggested-known-error-fixed": _problem_suggested_known_error_fixed,
    "baseline-request-laptop": _request_laptop,
    "baseline-request-db-read-task-failed": _request_task_failed,
    # Release management (`change-release` on the change): a no-go, then a go where B fails.
    "release": _release_no_go_then_failed,
    # Recorded on `itsm-baseline-2`: notifications and CMDB calls as local activities, and one
    # whose local attempt fails and is made again as an activity.
    "local-change-low-risk-closed": _low_risk_closed,
    "local-change-canceled-while-scheduled": _canceled_while_scheduled,
    "local-incident-p2-ack-hold-resolve-autoclose": _incident_lifecycle,
    "local-incident-reassigned-major-escalated": _incident_reassigned_major,
    "local-incident-notice-retried": _incident_notice_retried,
    "local-problem-suggested-known-error-fixed": _problem_suggested_known_error_fixed,
    "local-request-laptop": _request_laptop,
    "local-request-db-read-task-failed": _request_task_failed,
    "local-release": _release_no_go_then_failed,
    "local-incident-deduplicated-reopened": _incident_deduplicated_reopened,
}


async def record_scenarios(only: str = "") -> None:
    """Each scenario on a time-skipping server of its own: the Java test server stops skipping
    time for good once a parent ends while an abandoned child runs on (a router and its
    incident, an incident and the problem it started), which would stall every later one."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, scenario in SCENARIOS.items():
            if not name.startswith(only):
                continue
            env = await start_time_skipping()
            try:
                tq = f"record-{uuid.uuid4()}"
                db = Database(f"sqlite:///{tmp}/{name}.sqlite3")
                channel = RecordingChannel(fail_times=getattr(scenario, "fail_times", 0))
                async with running_worker(env, tq, db, channel):
                    recorded = await scenario(env, tq)
                    runs = recorded if isinstance(recorded, dict) else {"": recorded}
                    for suffix, workflow_id in runs.items():
                        history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                        label = f"{name}-{suffix}" if suffix else name
                        (FOLDER / f"{label}.json").write_text(history.to_json())
                        print(f"recorded {label} ({len(history.events)} events)")
            finally:
                await env.shutdown()


async def record_from_server(workflow_id: str, name: str) -> None:
    client = await connect()
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (FOLDER / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name} from {workflow_id} ({len(history.events)} events)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-server", metavar="ID")
    parser.add_argument("--name")
    parser.add_argument("--only", default="", help="record only scenarios whose name starts with this")
    args = parser.parse_args()
    if args.from_server:
        asyncio.run(record_from_server(args.from_server, args.name or args.from_server))
    else:
        asyncio.run(record_scenarios(args.only))
