"""Nothing forged (issue 12): every path into a run is verified under ITSM_AUTH.

Each test is an attack that once worked, sent through a raw temporalio client (or an
attacker's own workflow on another task queue) where the CLI would refuse, against a real
worker on a real dev server: the time-skipping test server drops the headers of signals
between runs, where the worker's credential travels. These are invariants: keep them green
through every restructuring of the process code."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from definitions import registry
from definitions.change import StandardTemplate
from definitions.incident import EscalationPolicy, EscalationStep, StepKind
from itsmflow.app import change_ops, incident_ops, problem_ops, request_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from itsmflow.app.incident_submit import build_incident
from itsmflow.app.ops import StartRefused
from itsmflow.app.problem_submit import build_problem
from itsmflow.app.request_submit import build_request
from tests.worker.auth_helpers import Replaying, keyring, signed_client
from tests.workflows.helpers import activity_types, history_events, refusal, rows
from tests.workflows.incident_helpers import webhook_receiver
from worker.main import build_worker
from workflows.change_models import ChangeState, ChangeType
from workflows.incident_models import NoteInput
from workflows.models import ActorInput
from workflows.problem_models import ChangeClosed, ProblemState
from workflows.request_models import ItemInput

pytestmark = pytest.mark.asyncio


@workflow.defn(sandboxed=False)
class Forger:
    """An attacker's workflow on its own task queue: starts one of ours as its child."""

    @workflow.run
    async def run(self, spec: dict) -> None:
        await workflow.execute_child_workflow(spec["workflow"], spec["arg"], id=spec["id"],
                                              task_queue=spec["task_queue"])


async def failure_of(live, run_id: str) -> str:
    """How a run failed (a run that goes on instead fails the test, after 20 s)."""
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(live.client.get_workflow_handle(run_id).result(), 20)
    return failed.value.cause.message


async def as_child(live, task_queue: str, workflow_type: str, arg) -> str:
    """Start `arg` as a child of a Forger run on another task queue; returns the child's id."""
    evil = f"evil-{uuid.uuid4()}"
    async with Worker(live.client, task_queue=evil, workflows=[Forger], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await live.client.start_workflow(
            Forger.run, {"workflow": workflow_type, "arg": arg.model_dump(mode="json"), "id": arg.id,
                         "task_queue": task_queue}, id=f"forger-{uuid.uuid4()}", task_queue=evil)
        try:
            await asyncio.wait_for(handle.result(), 20)
        except (WorkflowFailureError, asyncio.TimeoutError):  # its child failed, or runs on
            pass
    return arg.id


# --- 1. child starts ----------------------------------------------------------------------------

async def test_a_change_started_as_another_workflows_child_is_verified(live, task_queue, db, channel, keys, tracked):
    """A change on critical db-prod-1, under a policy whose made-up standard template covers it
    (no approval), started as a child from another task queue: it never runs."""
    now = await live.get_current_time()
    demo = registry.get("acme-demo")
    forged_policy = demo.model_copy(update={"templates": [
        *demo.templates, StandardTemplate(name="anything", title="Anything", cis=["db-prod-1"])]})
    change = build_change(change_id=new_id("CHG"), title="Drop the payments schema", cis=["db-prod-1"],
                          change_type=ChangeType.STANDARD, template="anything", start=now + timedelta(minutes=5),
                          end=now + timedelta(minutes=30), requested_by="alice", now=now, policy=forged_policy)
    tracked.append(change.id)
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        await as_child(live, task_queue, "ChangeWorkflow", change)
        assert await failure_of(live, change.id) == (
            "unverified actor alice: no credential (ITSM_AUTH is on; set ITSM_AUTH_KEY)")
    assert await activity_types(live, change.id) == [] and channel.sent == []
    assert rows(db, "SELECT change_id FROM change_calendar") == []


async def test_an_item_started_as_another_workflows_child_is_verified(live, task_queue, db, channel, keys, tracked):
    """A 365-day VPN grant with no approval, as an item started by another workflow."""
    vpn = build_request(item_name="vpn-access", raw={"duration": "5", "reason": "travel"}, requested_by="alice")
    plan = vpn.plans[0]
    forged = plan.model_copy(update={"variables": {"duration": 365, "reason": "travel"},
                                     "item": plan.item.model_copy(update={"approval": None})})
    item = ItemInput(id=plan.id, request_id=vpn.id, plan=forged, requested_by="alice", requested_for="alice",
                     organisation=vpn.organisation, calendar=vpn.calendar)
    tracked.append(item.id)
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        await as_child(live, task_queue, "ItemWorkflow", item)
        assert await failure_of(live, item.id) == "ItemWorkflow runs only as part of a request: start the request"
    assert await activity_types(live, item.id) == []
    assert rows(db, "SELECT * FROM fulfillment_record") == []


# --- 2. the dedup router's incidents --------------------------------------------------------------

def _paging_webhook(policy, url: str):
    """acme-incident with every escalation policy's first step a webhook to `url`."""
    return policy.model_copy(update={"escalation_policies": [
        EscalationPolicy(name=p.name, group=p.group, steps=[EscalationStep(kind=StepKind.WEBHOOK, url=url),
                                                             *p.steps])
        for p in policy.escalation_policies]})


def _in_service_desk(org, user: str):
    return org.model_copy(update={"groups": [
        g.model_copy(update={"members": [*g.members, user]}) if g.name == "service-desk" else g for g in org.groups]})


@pytest.mark.parametrize("forge, expected", [
    (lambda incident, url: incident.model_copy(update={"policy": _paging_webhook(incident.policy, url)}),
     "policy acme-incident@1 does not match this worker's definition acme-incident@1 "
     "(update the client's definitions)"),
    (lambda incident, url: incident.model_copy(update={"organisation": _in_service_desk(incident.organisation,
                                                                                         "alice")}),
     "organisation acme@1 does not match this worker's definition acme@1 (update the client's definitions)"),
])
async def test_the_dedup_router_opens_only_incidents_with_the_workers_definitions(
        live, task_queue, db, channel, keys, tracked, monkeypatch, forge, expected):
    """alice signs her own `attach_or_open` honestly, but the incident it carries brings a
    policy that posts to an internal listener, or an organisation that makes her a responder."""
    key = f"mon:web-01:{uuid.uuid4()}"
    with webhook_receiver() as (url, received):  # listed in ITSM_WEBHOOK_ALLOW: only the check stops it
        incident = forge(build_incident(title="web-01 down", ci="web-01", impact=1, urgency=1, opened_by="alice",
                                        dedup_key=key), url)
        tracked.extend([incident_ops.router_id(key), incident.id])
        async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
            alice = signed_client(live, keys["alice"][0])
            assert await refusal(incident_ops.open_incident(alice, incident, task_queue)) == expected
            await asyncio.sleep(0.5)
        assert received == []
    assert await _never_started(live, incident.id)


async def _never_started(live, run_id: str) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await live.client.get_workflow_handle(run_id).describe()
    except RPCError as err:
        return err.status == RPCStatusCode.NOT_FOUND
    return False


# --- 3. replay across continue-as-new -------------------------------------------------------------

async def test_a_captured_update_is_refused_after_continue_as_new(live, task_queue, db, channel, keys, tracked,
                                                                  monkeypatch):
    short = registry.get("acme-incident").model_copy(update={"name": "acme-incident-short",
                                                             "continue_as_new_after": 50})
    monkeypatch.setitem(registry.BUILTIN, short.name, short)
    incident = build_incident(title="api latency", ci="web-01", impact=2, urgency=2, opened_by="alice",
                              policy_name=short.name)
    tracked.append(incident.id)
    alice = signed_client(live, keys["alice"][0])
    replayer = Replaying()
    replaying = signed_client(live, keys["alice"][0], replayer)
    captured = NoteInput(actor="alice", text="restarted the pool")
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        await incident_ops.open_incident(alice, incident, task_queue)
        handle = live.client.get_workflow_handle(incident.id)
        first_run = (await handle.describe()).run_id
        await incident_ops.update(replaying, incident.id, "note", captured)
        for number in range(40):
            await incident_ops.update(alice, incident.id, "note", NoteInput(actor="alice", text=f"note {number}"))
            if (await handle.describe()).run_id != first_run:
                break
        else:
            pytest.fail("the incident never continued as new")
        assert await refusal(incident_ops.update(replaying, incident.id, "note", captured)) == (
            "credential of alice already used: sign each call afresh")
        status = await incident_ops.update(alice, incident.id, "note", NoteInput(actor="alice", text="fresh"))
    assert status.runs == 2 and [e.details for e in status.events].count("restarted the pool") == 1


# --- 4. carried state -----------------------------------------------------------------------------

async def test_a_start_cannot_carry_a_made_up_state(live, task_queue, db, channel, keys, tracked):
    alice = signed_client(live, keys["alice"][0])
    honest = build_incident(title="disk full", ci="web-01", impact=2, urgency=2, opened_by="alice")
    tracked.append(honest.id)
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        status, _ = await incident_ops.open_incident(alice, honest, task_queue)
        made_up = status.model_copy(update={"state": "resolved", "acknowledged_by": "grace",
                                            "acknowledged_at": status.opened_at, "resolved_at": status.opened_at})
        forged = build_incident(title="disk full", ci="web-01", impact=2, urgency=2, opened_by="alice")
        forged = forged.model_copy(update={"carried": made_up.model_copy(update={"id": forged.id})})
        tracked.append(forged.id)
        with pytest.raises(StartRefused) as refused:
            await incident_ops.open_incident(alice, forged, task_queue)
    assert str(refused.value) == "carried state is accepted only on the run's own continue-as-new"
    assert await activity_types(live, forged.id) == []


# --- 5. a start that names no user ----------------------------------------------------------------

def _in_problem_managers(org, user: str):
    return org.model_copy(update={"groups": [
        g.model_copy(update={"members": [*g.members, user]}) if g.name == "problem-managers" else g
        for g in org.groups]})


@pytest.mark.parametrize("signer", [None, "alice"])
async def test_a_start_that_names_no_user_is_the_workers_only(live, task_queue, db, channel, keys, tracked, signer):
    """A problem with no opener and an organisation that makes alice a problem manager: she
    would write a "known error" workaround into the CMDB that every later incident shows."""
    problem = build_problem(title="Recurring outages", ci="db-prod-1", opened_by="alice")
    problem = problem.model_copy(update={"opened_by": None,
                                         "organisation": _in_problem_managers(problem.organisation, "alice")})
    tracked.append(problem.id)
    client = signed_client(live, keys[signer][0] if signer else None)
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        await client.start_workflow("ProblemWorkflow", problem, id=problem.id, task_queue=task_queue)
        assert await failure_of(live, problem.id) == (
            "unverified start: this ProblemWorkflow names no user (only the worker starts one so)")
    assert await activity_types(live, problem.id) == [] and channel.sent == []
    assert rows(db, "SELECT * FROM known_error") == []


async def test_the_workers_own_suggestion_starts(live, task_queue, db, channel, keys, tracked):
    """Three incidents on one CI: the worker suggests a problem, signed with its own key."""
    alice = signed_client(live, keys["alice"][0])
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        for number in range(3):
            incident = build_incident(title=f"web-02 slow {number}", ci="web-02", impact=3, urgency=3,
                                      opened_by="alice")
            tracked.append(incident.id)
            status, _ = await incident_ops.open_incident(alice, incident, task_queue)
        for _ in range(50):
            status = await incident_ops.status(live.client, incident.id)
            if status.problem:
                break
            await asyncio.sleep(0.1)
        assert status.problem, "no problem was suggested"
        tracked.append(status.problem)
        problem = await problem_ops.status(live.client, status.problem)
    assert problem.state == ProblemState.NEW and len(problem.incidents) == 3


# --- 6. signals -----------------------------------------------------------------------------------

async def test_an_items_cancel_signal_needs_the_workers_credential(live, task_queue, db, channel, keys, tracked):
    alice = signed_client(live, keys["alice"][0])
    laptop = build_request(item_name="laptop", raw={"model": "pro-16", "justification": "x"}, requested_by="alice")
    item_id = laptop.plans[0].id
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        await request_ops.submit(alice, laptop, task_queue)
        tracked.extend([laptop.id, item_id])
        await signed_client(live, None).get_workflow_handle(item_id).signal("cancel", "forged")
        await signed_client(live, keys["alice"][0]).get_workflow_handle(item_id).signal("cancel", "forged")
        item = await asyncio.wait_for(request_ops.status(live.client, item_id), 30)
        assert item.state.value == "fulfilling"
        signals = [e for e in await history_events(live, item_id)
                   if e.HasField("workflow_execution_signaled_event_attributes")]
        assert len(signals) == 2  # they reached history, and changed nothing
        # The request's own cancel reaches the item with the worker's credential.
        from workflows.request_models import CancelRequestInput

        status = await asyncio.wait_for(
            request_ops.cancel(alice, laptop.id, CancelRequestInput(actor="alice", reason="not needed")), 30)
        tracked.extend(t.task_id for t in (await request_ops.status(live.client, item_id)).tasks if t.task_id)
    assert status.state.value == "canceled"
    from itsmflow.app.audit import audit_trail

    trail = await audit_trail(live.client, item_id, children=False)
    assert [(row["action"], row.get("verified", False)) for row in trail if row["action"].startswith("signal")] == [
        ("signal cancel (dropped: no worker credential)", False), ("signal cancel (dropped: no worker credential)",
                                                                   False), ("signal cancel", True)]


async def test_a_problems_change_closed_signal_needs_the_workers_credential(live, task_queue, db, channel, keys,
                                                                          tracked):
    carol = signed_client(live, keys["carol"][0])
    problem = build_problem(title="Recurring outages", ci="web-01", opened_by="carol")
    tracked.append(problem.id)
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        await problem_ops.open_problem(carol, problem, task_queue)
        await problem_ops.update(carol, problem.id, "investigate", ActorInput(actor="carol"))
        await signed_client(live, None).get_workflow_handle(problem.id).signal(
            "change_closed", ChangeClosed(change_id="CHG-20261201-FAKE", outcome="successful"))
        status = await problem_ops.status(live.client, problem.id)
    assert status.state == ProblemState.INVESTIGATING and status.changes == []


async def test_a_change_that_fails_to_start_is_unlinked_under_auth(live, task_queue, db, channel, keys, tracked):
    """The CLI links a change to its problem, then starts it; a refused start tells the problem
    so with a verified update, not an unsigned signal the worker would drop."""
    carol = signed_client(live, keys["carol"][0])
    problem = build_problem(title="Recurring outages", ci="web-01", opened_by="carol")
    tracked.append(problem.id)
    now = await live.get_current_time()
    change = build_change(change_id=new_id("CHG"), title="Fix the pool", cis=["web-01"],
                          change_type=ChangeType.NORMAL, start=now + timedelta(hours=1),
                          end=now + timedelta(hours=2), requested_by="carol", now=now,
                          policy=registry.get("acme-demo"), problem=problem.id)
    forged = change.model_copy(update={"policy": change.policy.model_copy(update={"version": 9})})
    tracked.append(change.id)
    async with build_worker(live.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        await problem_ops.open_problem(carol, problem, task_queue)
        await problem_ops.update(carol, problem.id, "investigate", ActorInput(actor="carol"))
        with pytest.raises(StartRefused):
            await change_ops.submit(carol, forged, task_queue)
        status = await problem_ops.status(live.client, problem.id)
        assert [(c.id, c.outcome) for c in status.changes] == [(change.id, "canceled")]
        fresh = change.model_copy(update={"id": new_id("CHG")})
        tracked.append(fresh.id)
        started = await change_ops.submit(carol, fresh, task_queue)
    assert started.state == ChangeState.AUTHORIZE
