"""The incident process under time skipping, asserted at exact fake times."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from definitions.incident import EscalationStep, StepKind
from definitions.oncall import OnCallSchedule, Rotation
from tests.workflows.helpers import history_events, running_worker
from tests.workflows.incident_helpers import (
    MINUTE,
    incidents,  # noqa: F401 (the fixture)
    next_weekday_at,
    page,
    page_times,
    policy,
    skip_to,
    webhook_receiver,
)
from workflows.incident_dedup import router_id
from workflows.incident_models import EscalateInput, IncidentResolveInput, NoteInput, PriorityInput, ReassignInput
from workflows.models import ActorInput, ReasonInput

REPEAT_TWICE = EscalationStep(kind=StepKind.REPEAT, from_step=1, max_loops=2)
TWO_STEPS = policy(page("bob", 15 * MINUTE), page("dave", 15 * MINUTE), REPEAT_TWICE)


def close_to(actual: timedelta, expected: timedelta) -> bool:
    return abs(actual - expected) < timedelta(seconds=1)


def assert_pages(status, expected: list[tuple[timedelta, str]]) -> None:
    pages = page_times(status)
    assert len(pages) == len(expected), pages
    for (offset, details), (want_offset, want_user) in zip(pages, expected):
        assert close_to(offset, want_offset), (details, offset, want_offset)
        assert f"paged {want_user} " in details, (details, want_user)


async def test_unacknowledged_p1_escalates_at_exact_times_with_bounded_repeats(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(TWO_STEPS)
        assert (status.state.value, status.priority.value, status.assigned_group) == ("new", "P1", "network")
        await env.sleep(3 * timedelta(hours=1))
        status = await incidents.show(status.id)
    assert_pages(status, [(0 * MINUTE, "bob"), (15 * MINUTE, "dave"), (30 * MINUTE, "bob"), (45 * MINUTE, "dave"),
                          (60 * MINUTE, "bob"), (75 * MINUTE, "dave")])
    assert not status.escalation.active
    assert [e.details for e in status.events if e.action == "escalation"][-2:] == [
        "step 3: repeat limit 2 reached", "escalation exhausted: no further steps"]
    pages = [k for k in channel.keys() if k.startswith("escalation.")]
    assert pages == [f"escalation.{n}.step{1 + (n + 1) % 2}" for n in range(1, 7)]


async def test_acknowledge_stops_escalation_and_meets_response(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(TWO_STEPS)
        await env.sleep(5 * MINUTE)
        acked = await incidents.act(status.id, "acknowledge", ActorInput(actor="dave"))
        assert (acked.state.value, acked.acknowledged_by, acked.escalation.active) == ("in_progress", "dave", False)
        await env.sleep(timedelta(hours=1))
        status = await incidents.show(status.id)
    assert_pages(status, [(0 * MINUTE, "bob")])
    response = status.sla["response"]
    assert response.met_at == acked.acknowledged_at and not response.breached
    assert close_to(response.met_at - status.opened_at, 5 * MINUTE)
    assert response.notices_sent == []


async def test_step_resolving_to_nobody_is_skipped_without_its_delay(env, task_queue, db, channel, incidents):
    ghosts = OnCallSchedule(name="ghosts", rotation=Rotation(users=["ghost"], handoff="2026-01-05T09:00:00Z"))
    empty_first = policy(EscalationStep(kind=StepKind.NOTIFY_ON_CALL, schedule="ghosts", delay=15 * MINUTE),
                         page("dave", 15 * MINUTE))
    empty_first = empty_first.model_copy(update={"schedules": [*empty_first.schedules, ghosts]})
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(empty_first)
        assert status.events[1].details == "step 1 skipped: on-call ghosts resolves to nobody"
        assert_pages(status, [(0 * MINUTE, "dave")])


async def test_escalate_to_step_runs_it_now(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(TWO_STEPS)
        await env.sleep(2 * MINUTE)
        await incidents.act(status.id, "escalate", EscalateInput(actor="frank", to_step=2))
        await env.sleep(16 * MINUTE)
        status = await incidents.show(status.id)
    assert_pages(status, [(0 * MINUTE, "bob"), (2 * MINUTE, "dave"), (17 * MINUTE, "bob")])
    assert [e.details for e in status.events if e.actor == "frank"] == ["to step 2"]


async def test_reassign_restarts_with_the_new_groups_policy(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(TWO_STEPS)
        await env.sleep(5 * MINUTE)
        moved = await incidents.act(status.id, "reassign", ReassignInput(actor="dave", group="db-admins"))
        assert (moved.assigned_group, moved.state.value, moved.escalation.policy) == ("db-admins", "new", "db-admins")
        await env.sleep(16 * MINUTE)
        status = await incidents.show(status.id)
    assert_pages(status, [(0 * MINUTE, "bob"), (5 * MINUTE, "grace"), (20 * MINUTE, "grace")])


@pytest.mark.parametrize("weekday, expected", [(0, [(0, "bob"), (15, "dave")]), (5, [(0, "dave")])])
async def test_business_hours_condition(env, task_queue, db, channel, incidents, weekday, expected):
    gated = policy(EscalationStep(kind=StepKind.IF_TIME_BETWEEN, calendar="business", when="inside"),
                   page("bob", 15 * MINUTE), page("dave", 15 * MINUTE))
    await skip_to(env, next_weekday_at(await env.get_current_time(), weekday, 10))
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(gated)
        await env.sleep(20 * MINUTE)
        status = await incidents.show(status.id)
    assert_pages(status, [(m * MINUTE, who) for m, who in expected])


QUIET = policy(page("bob"))


async def test_sla_notices_fire_at_50_75_100_percent_exactly_once(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(QUIET)
        await env.sleep(timedelta(hours=5))
        status = await incidents.show(status.id)
    offsets = [(e.time - status.opened_at, e.details.split(" (")[0]) for e in status.events if e.action == "sla"]
    expected = [(timedelta(minutes=7.5), "response 50% used"), (timedelta(minutes=11.25), "response 75% used"),
                (timedelta(minutes=15), "response breached"), (timedelta(hours=2), "resolution 50% used"),
                (timedelta(hours=3), "resolution 75% used"), (timedelta(hours=4), "resolution breached")]
    assert [d for _, d in offsets] == [d for _, d in expected]
    assert all(close_to(got, want) for (got, _), (want, _) in zip(offsets, expected)), offsets
    assert [k for k in channel.keys() if k.startswith("sla.")] == [
        "sla.response.50", "sla.response.75", "sla.response.100",
        "sla.resolution.50", "sla.resolution.75", "sla.resolution.100"]
    assert status.sla["response"].breached and status.sla["resolution"].breached


async def test_hold_pauses_the_clock_and_resume_continues_it(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(QUIET)
        await env.sleep(5 * MINUTE)
        held = await incidents.act(status.id, "hold", ReasonInput(actor="dave", reason="vendor"))
        assert held.state.value == "on_hold" and held.sla["response"].paused and held.sla["response"].due is None
        await env.sleep(60 * MINUTE)
        await incidents.act(status.id, "resume", ActorInput(actor="dave"))
        await env.sleep(20 * MINUTE)
        status = await incidents.show(status.id)
    response = [(e.time - status.opened_at, e.details) for e in status.events if e.action == "sla"
                and e.details.startswith("response")]
    assert [close_to(t, want) for (t, _), want in zip(response, [timedelta(minutes=67.5), timedelta(minutes=71.25),
                                                                  timedelta(minutes=75)])] == [True] * 3
    assert close_to(status.sla["response"].due - status.opened_at, timedelta(minutes=75))


async def test_p3_opened_friday_1700_breaches_on_monday(env, task_queue, db, channel, incidents):
    friday = next_weekday_at(await env.get_current_time(), 4, 17)
    await skip_to(env, friday)
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(QUIET, impact=2, urgency=2)
        assert status.priority.value == "P3"
        monday = friday + timedelta(days=3)
        assert status.sla["response"].due == monday.replace(hour=11)
        assert status.sla["resolution"].due == monday.replace(hour=17)
        await skip_to(env, monday.replace(hour=11, minute=1))
        status = await incidents.show(status.id)
    breach = [e.time for e in status.events if e.details.startswith("response breached")]
    assert len(breach) == 1 and close_to(breach[0] - monday.replace(hour=11), timedelta(0))
    assert status.sla["response"].breached and not status.sla["resolution"].breached


async def test_priority_change_recomputes_from_the_original_open_time(env, task_queue, db, channel, incidents):
    await skip_to(env, next_weekday_at(await env.get_current_time(), 1, 10))
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(QUIET, impact=2, urgency=2)
        assert close_to(status.sla["response"].due - status.opened_at, timedelta(hours=2))
        await env.sleep(30 * MINUTE)
        raised = await incidents.act(status.id, "set_priority", PriorityInput(actor="dave", impact=1, urgency=1))
    assert raised.priority.value == "P1"
    assert close_to(raised.sla["response"].due - status.opened_at, 15 * MINUTE)
    assert raised.sla["response"].breached
    assert close_to(raised.sla["resolution"].due - status.opened_at, timedelta(hours=4))
    assert [k for k in channel.keys() if k.startswith("sla.response")] == [
        "sla.response.50", "sla.response.75", "sla.response.100"]


async def test_dedup_key_attaches_while_open_and_opens_anew_after_resolve(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        first = await incidents.open(QUIET, dedup_key="mon:lb-01")
        await env.sleep(MINUTE)
        again = await incidents.open(QUIET, dedup_key="mon:lb-01")
        assert again.id == first.id and again.dedup_count == 2
        assert again.events[-1].details.startswith("event #2 attached")
        await incidents.act(first.id, "resolve", IncidentResolveInput(actor="dave", code="fixed"))
        later = await incidents.open(QUIET, dedup_key="mon:lb-01")
        assert later.id != first.id and later.dedup_count == 1
        router = env.client.get_workflow_handle(router_id("mon:lb-01"))
        await router.terminate("test finished")



async def test_a_deduplicated_incident_reopened_resolves_again_after_its_router_ended(
        env, task_queue, db, channel, incidents):
    """The first resolve releases the router, which then ends; a resolve after a reopen has
    nothing to release. It used to signal the ended router and fail the incident run.
    (Auto-close is not awaited: the test server skips no time once a parent has ended while
    its abandoned child runs on.)"""
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(QUIET, dedup_key="mon:web-02")
        await incidents.act(status.id, "resolve", IncidentResolveInput(actor="dave", code="fixed"))
        router = env.client.get_workflow_handle(router_id("mon:web-02"))
        assert await router.result() is None  # released with nothing open: it ended
        await incidents.act(status.id, "reopen", ReasonInput(actor="alice", reason="back again"))
        again = await incidents.act(status.id, "resolve", IncidentResolveInput(actor="dave", code="replaced"))
        assert (again.state.value, again.resolutions) == ("resolved", 2)
        assert (await incidents.show(status.id)).state.value == "resolved"
    assert (await env.client.get_workflow_handle(status.id).describe()).status.name == "RUNNING"
    kinds = [e.event_type for e in await history_events(env, status.id)]
    assert EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED in kinds  # the first release
    assert EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED not in kinds


async def test_reopen_within_window_then_auto_close_and_cmdb_records(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(QUIET)
        await incidents.act(status.id, "acknowledge", ActorInput(actor="dave"))
        await env.sleep(10 * MINUTE)
        resolved = await incidents.act(status.id, "resolve", IncidentResolveInput(actor="dave", code="restart",
                                                                                   notes="ok"))
        assert resolved.state.value == "resolved" and resolved.sla["resolution"].met_at is not None
        await env.sleep(timedelta(days=1))
        reopened = await incidents.act(status.id, "reopen", ReasonInput(actor="alice", reason="back again"))
        assert reopened.state.value == "in_progress" and reopened.sla["resolution"].met_at is None
        assert close_to(reopened.sla["resolution"].due - status.opened_at, timedelta(days=1, hours=4))
        final = await incidents.act(status.id, "resolve", IncidentResolveInput(actor="dave", code="replace-psu"))
        await env.sleep(timedelta(days=3, minutes=1))
        status = await incidents.show(status.id)
    assert status.state.value == "closed" and status.resolutions == 2
    assert status.closed_at - final.resolved_at == timedelta(days=3)
    with db.transaction() as cur:
        rows = cur.all("SELECT idempotency_key, ci, resolution_code FROM incident_record ORDER BY idempotency_key")
    assert rows == [(f"{status.id}:resolve.1", "lb-01", "restart"), (f"{status.id}:resolve.2", "lb-01", "replace-psu")]


async def test_major_incident_pages_major_group_with_impacted_services(env, task_queue, db, channel, incidents):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(QUIET, ci="db-prod-1")
        major = await incidents.act(status.id, "declare_major", ReasonInput(actor="grace", reason="payments down"))
    assert major.major and major.impacted_services == ["payments", "web-shop"]
    sent = [m for m in channel.sent if m.key.endswith(":major")]
    assert len(sent) == 1 and sorted(sent[0].to) == ["bob@acme.example", "carol@acme.example"]
    assert "payments, web-shop" in sent[0].text


async def test_long_incident_continues_as_new_keeping_state(env, task_queue, db, channel, incidents):
    looping = policy(page("bob", MINUTE), EscalationStep(kind=StepKind.REPEAT, from_step=1, max_loops=9),
                     continue_as_new_after=50)
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(looping, dedup_key=None)
        await incidents.act(status.id, "note", NoteInput(actor="carol", text="watching"))
        await env.sleep(15 * MINUTE)
        status = await incidents.show(status.id)
    assert status.runs >= 2
    assert status.events[0].action == "opened" and any(e.details == "watching" for e in status.events)
    assert len(page_times(status)) == 10
    pages = [k for k in channel.keys() if k.startswith("escalation.")]
    assert len(pages) == len(set(pages)) == 10


async def test_updates_return_while_a_long_incident_continues_as_new(env, task_queue, db, channel, incidents):
    """An update arriving once the history is long must not wait on the continue-as-new
    that itself waits for the update (they used to wait on each other forever)."""
    import asyncio

    quiet = policy(page("bob"), continue_as_new_after=50)
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(quiet, dedup_key=None)
        for number in range(14):
            status = await asyncio.wait_for(
                incidents.act(status.id, "note", NoteInput(actor="carol", text=f"note {number}")), 20)
        status = await incidents.show(status.id)
    assert status.runs >= 2
    assert [e.details for e in status.events if e.action == "note"] == [f"note {n}" for n in range(14)]


@pytest.mark.parametrize("name, arg, message", [
    ("acknowledge", ActorInput(actor="mallory"), "unknown user 'mallory'"),
    ("acknowledge", ActorInput(actor="alice"), "alice may not acknowledge"),
    ("reopen", ReasonInput(actor="alice"), "is new; cannot reopen"),
    ("hold", ReasonInput(actor="dave", reason=" "), "a reason is required"),
    ("escalate", EscalateInput(actor="dave", to_step=9), "has 3 steps"),
    ("reassign", ReassignInput(actor="dave", group="nope"), "unknown group 'nope'"),
])
async def test_refused_updates_never_reach_history(env, task_queue, db, channel, incidents, name, arg, message):
    async with running_worker(env, task_queue, db, channel):
        status = await incidents.open(TWO_STEPS)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await incidents.act(status.id, name, arg)
        assert message in str(refused.value.cause)
        history = await env.client.get_workflow_handle(status.id).fetch_history()
    accepted = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert name not in accepted


async def test_round_robin_wait_and_webhook_steps(env, task_queue, db, channel, incidents):
    with webhook_receiver() as (url, received):
        steps = policy(
            EscalationStep(kind=StepKind.NOTIFY_GROUP, group="network", round_robin=True),
            EscalationStep(kind=StepKind.WAIT, duration=10 * MINUTE),
            EscalationStep(kind=StepKind.WEBHOOK, url=url, delay=5 * MINUTE),
            EscalationStep(kind=StepKind.REPEAT, from_step=1, max_loops=1),
        )
        async with running_worker(env, task_queue, db, channel):
            status = await incidents.open(steps)
            await env.sleep(timedelta(hours=1))
            status = await incidents.show(status.id)
    assert_pages(status, [(0 * MINUTE, "dave"), (15 * MINUTE, "frank")])
    webhooks = [(e.time - status.opened_at, e.details) for e in status.events if "webhook" in e.details]
    assert [close_to(t, want) for (t, _), want in zip(webhooks, [10 * MINUTE, 25 * MINUTE])] == [True, True]
    assert [key.split(":", 1)[1] for key, _ in received] == ["escalation.2.step3", "escalation.4.step3"]
    assert received[0][1]["incident"]["id"] == status.id and received[0][1]["incident"]["priority"] == "P1"
