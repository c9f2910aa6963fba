"""The problem process under time skipping, with the real activities, CMDB and templates:
opened by hand or suggested by recurring incidents, known errors shown on new incidents,
resolved by a successful change."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.testing import ActivityEnvironment

from activities.models import IncidentOnCiInput, KnownError
from activities.problems import ProblemActivities, suggested_id
from cli.main import run_cli
from definitions import registry
from tests.workflows.helpers import Changes, accepted_updates, approve, complete, refusal, rows, sleep_until, status_of
from tests.workflows.problem_helpers import problems  # noqa: F401 (fixture)
from tests.workflows.problem_helpers import raise_change as raise_change_for
from workflows.change_models import Outcome
from workflows.incident_models import IncidentResolveInput
from workflows.models import ActorInput, ReasonInput
from workflows.models import ResolveInput as ProblemResolve
from workflows.problem_models import ChangeLinkInput, KnownErrorInput, LinkInput, ProblemState, RootCauseInput

WORKAROUND = "fail over to lb-02 and restart the health checker"


def known_error_rows(db):
    return rows(db, "SELECT problem_id, ci, workaround, revision, retired_at IS NULL FROM known_error")


async def minutes_apart(env, problems, count: int) -> list:
    """Incidents on lb-01 a minute apart (their order in a problem is the order they opened)."""
    opened = []
    for _ in range(count):
        await env.sleep(timedelta(minutes=1))
        opened.append(await problems.incident())
    return opened


def sent(channel, run_id: str, step: str):
    return [m for m in channel.sent if m.key == f"{run_id}:{step}"]


async def test_problem_by_hand_records_a_known_error_shown_on_new_incidents(env, problems, db, channel):
    first = await problems.incident()
    problem = await problems.open(incidents=[first.id])
    assert (problem.state, problem.incidents, problem.opened_by, problem.suggested) == (ProblemState.NEW, [first.id],
                                                                                        "dave",
                                                                                        False)
    await problems.eventually(first.id, lambda s: s.problem == problem.id)

    assert (await problems.act(problem.id, "investigate", ActorInput(actor="dave"))).state == ProblemState.INVESTIGATING
    await problems.act(problem.id, "root_cause", RootCauseInput(actor="frank", text="health checker leaks sockets"))
    status = await problems.act(problem.id, "known_error", KnownErrorInput(actor="carol", workaround=WORKAROUND))
    assert (status.state, status.workaround, status.known_error_revision) == (ProblemState.KNOWN_ERROR, WORKAROUND, 1)
    assert known_error_rows(db) == [(problem.id, "lb-01", WORKAROUND, 1, 1)]
    [notice] = sent(channel, problem.id, "known_error.1")
    assert sorted(notice.to) == [f"{u}@acme.example" for u in ("carol", "dave", "erin", "frank", "grace")]

    second = await problems.incident(title="lb-01 flapping")
    assert second.known_errors == [KnownError(problem_id=problem.id, ci="lb-01", title=problem.title,
                                              root_cause="health checker leaks sockets", workaround=WORKAROUND)]
    assert second.problem == problem.id
    assert [e.details for e in second.events if e.action in ("known error", "problem")] == [
        f"{problem.id}: {WORKAROUND}", f"linked to {problem.id}, the open problem of lb-01"]
    [opened] = sent(channel, second.id, "opened")
    assert f"Workaround: {WORKAROUND}" in opened.text and f"Part of problem {problem.id}" in opened.text
    status = await problems.eventually(problem.id, lambda s: second.id in s.incidents)
    assert status.incidents == [first.id, second.id]
    assert [e.actor for e in status.events if e.action == "linked"] == ["dave", "system"]

    resolved = await problems.act(problem.id, "resolve", ProblemResolve(actor="dave", notes="checker patched"))
    assert resolved.state == ProblemState.RESOLVED
    assert known_error_rows(db) == [(problem.id, "lb-01", WORKAROUND, 1, 0)]
    assert rows(db, "SELECT ci FROM problem_open") == []
    third = await problems.incident(title="lb-01 again")
    assert (third.known_errors, third.problem) == ([], None)

    closed = await problems.act(problem.id, "close", ReasonInput(actor="grace"))
    assert closed.state == ProblemState.CLOSED
    assert (await problems.show(problem.id)).closed_at is not None
    assert [m.key.split(":", 1)[1] for m in channel.sent if m.key.startswith(problem.id)] == [
        "opened", "known_error.1", "resolved"]
    from itsmflow.app.audit import audit_trail

    await env.client.get_workflow_handle(problem.id).result()
    trail = [row["action"] for row in await audit_trail(env.client, problem.id)]
    assert trail.count("problem_ended") == 1, trail  # resolving ended it; closing ends nothing more


async def test_third_incident_within_the_window_suggests_exactly_one_problem(env, problems, db, channel):
    first, second, third = await minutes_apart(env, problems, 3)
    assert (first.problem, second.problem) == (None, None)
    problem_id = suggested_id(third.id, third.opened_at)
    assert third.problem == problem_id
    assert [e.details for e in third.events if e.action == "problem"] == [
        f"suggested {problem_id}: 3 incidents on lb-01 within the problem policy's window"]
    problem = await problems.eventually(problem_id, lambda s: s.state == ProblemState.NEW)
    assert (problem.suggested, problem.opened_by, problem.ci) == (True, "system", "lb-01")
    assert problem.incidents == [first.id, second.id, third.id]
    # The incident started it itself (an abandoned child), not an activity with a client.
    described = await env.client.get_workflow_handle(problem_id).describe()
    assert (described.parent_id, await described.static_summary()) == (third.id, "Recurring incidents on lb-01")
    assert problem.description == f"3 incidents on lb-01 within 7d: {first.id}, {second.id}, {third.id}"
    for earlier in (first, second):
        await problems.eventually(earlier.id, lambda s: s.problem == problem_id)

    [fourth] = await minutes_apart(env, problems, 1)
    assert fourth.problem == problem_id
    problem = await problems.eventually(problem_id, lambda s: len(s.incidents) == 4)
    assert problem.incidents[-1] == fourth.id
    assert rows(db, "SELECT ci, problem_id FROM problem_open") == [("lb-01", problem_id)]
    assert len(sent(channel, problem_id, "opened")) == 1


async def test_incidents_outside_the_window_do_not_count(env, problems):
    old = await problems.incident()
    await problems.incidents.act(old.id, "resolve", IncidentResolveInput(actor="dave", code="restart"))
    await env.sleep(timedelta(days=7, minutes=1))
    *recent, third = await minutes_apart(env, problems, 3)
    assert [i.problem for i in recent] == [None, None]
    problem = await problems.eventually(third.problem, lambda s: s.state == ProblemState.NEW)
    assert problem.incidents == [recent[0].id, recent[1].id, third.id]


async def test_a_retried_suggestion_starts_the_problem_once(env, problems, db, task_queue):
    """The activity run twice for the incident that made the count (a retry after a crash);
    past the link limit an incident is recorded in the CMDB only."""
    suggestion = ProblemActivities(db, env.client, registry.get("acme-problem"))
    harness = ActivityEnvironment()
    harness.info = dataclasses.replace(harness.info, task_queue=task_queue)
    now = await env.get_current_time()
    for number in (1, 2):
        await harness.run(suggestion.incident_on_ci, IncidentOnCiInput(
            incident_id=f"INC-20260101-000{number}", ci="web-02", opened_at=now))
    third = IncidentOnCiInput(incident_id="INC-20260101-0003", ci="web-02", opened_at=now)
    answers = [await harness.run(suggestion.incident_on_ci, third) for _ in range(2)]
    problem_id = suggested_id(third.incident_id, now)
    problems.ids.append(problem_id)
    assert [(a.problem_id, a.suggested) for a in answers] == [(problem_id, True)] * 2
    problem = await problems.eventually(problem_id, lambda s: len(s.events) >= 4)
    assert problem.incidents == ["INC-20260101-0001", "INC-20260101-0002", "INC-20260101-0003"]
    assert rows(db, "SELECT problem_id FROM problem_open WHERE ci = 'web-02'") == [(problem_id,)]

    capped = ProblemActivities(db, env.client, registry.get("acme-problem").model_copy(update={"link_limit": 4}))
    for number in (4, 5):
        answer = await harness.run(capped.incident_on_ci, IncidentOnCiInput(
            incident_id=f"INC-20260101-000{number}", ci="web-02", opened_at=now))
        assert (answer.problem_id, answer.suggested) == (problem_id, False)
    problem = await problems.act(problem_id, "settle", None)
    assert problem.incidents[3:] == ["INC-20260101-0004"]
    assert rows(db, "SELECT COUNT(*) FROM incident_occurrence WHERE problem_id = ?", (problem_id,)) == [(5,)]


async def test_successful_change_resolves_the_problem_and_a_failed_one_does_not(env, problems, db, task_queue):
    changes = Changes(env, task_queue)
    problem = await problems.open(ci="web-01", opened_by="erin", title="web-01 runs out of memory")
    await problems.act(problem.id, "investigate", ActorInput(actor="erin"))
    await problems.act(problem.id, "known_error", KnownErrorInput(actor="erin", workaround="restart nightly"))

    async def raise_change(outcome: Outcome) -> str:
        status = await raise_change_for(env, task_queue, problem.id, "erin")
        changes.ids.append(status.id)
        assert status.problem == problem.id
        await approve(env, status.id, "bob")
        await sleep_until(env, status.planned_start + timedelta(seconds=1))
        await complete(env, status.id, "erin", outcome=outcome)
        return status.id

    try:
        failed = await raise_change(Outcome.FAILED)
        status = await problems.eventually(problem.id, lambda s: s.changes[0].outcome is not None)
        assert (status.state, [(c.id, c.linked_by, c.outcome) for c in status.changes]) == (
            ProblemState.KNOWN_ERROR, [(failed, "erin", "failed")])
        assert known_error_rows(db) == [(problem.id, "web-01", "restart nightly", 1, 1)]

        fixed = await raise_change(Outcome.SUCCESSFUL)
        status = await problems.eventually(problem.id, lambda s: s.state == ProblemState.RESOLVED)
    finally:
        await changes.terminate_open()
    assert (status.resolution_notes, status.changes[-1].outcome) == (f"{fixed} successful", "successful")
    assert [(e.actor, e.action) for e in status.events[-2:]] == [("system", "change closed"), ("system", "resolved")]
    assert known_error_rows(db) == [(problem.id, "web-01", "restart nightly", 1, 0)]
    assert (await status_of(env, fixed)).notices == []
    from itsmflow.app.audit import audit_trail

    signals = [(r["action"], r["details"]) for r in await audit_trail(env.client, problem.id)
               if r["action"].startswith("signal")]
    assert signals == [("signal change_closed", f"change_id: {failed}; outcome: failed"),
                       ("signal change_closed", f"change_id: {fixed}; outcome: successful")]


async def test_refused_updates_never_reach_history(env, problems):
    problem = await problems.open()
    refused = [
        ("investigate", ActorInput(actor="mallory"), "unknown user 'mallory'"),
        ("root_cause", RootCauseInput(actor="alice", text="x"), "alice may not record the root cause of"),
        ("known_error", KnownErrorInput(actor="dave", workaround="w"), "is new; cannot record a known error"),
        ("link", LinkInput(actor="dave", incident_id="INC-1"), "'INC-1' is not an incident id"),
        ("cancel", ReasonInput(actor="dave", reason="dup"), "dave may not cancel"),
        ("close", ReasonInput(actor="carol"), "is new; cannot close it"),
        ("link_change", ChangeLinkInput(actor="dave", change_id="CHG-20260101-AAAA"), "investigate it first"),
    ]
    for name, arg, message in refused:
        assert message in await refusal(problems.act(problem.id, name, arg)), name
    canceled = await problems.act(problem.id, "cancel", ReasonInput(actor="grace", reason="duplicate"))
    assert canceled.state == ProblemState.CANCELED
    assert await accepted_updates(env, problem.id) == [("settle", None), ("cancel", "grace")]


async def test_cli_refuses_bad_problem_input_without_a_server(capsys):
    assert run_cli(["problem", "open", "--title", "t", "--ci", "nope", "--as", "dave"]) == 2
    assert run_cli(["problem", "open", "--title", "t", "--ci", "lb-01", "--incident", "x", "--as", "dave"]) == 2
    assert run_cli(["change", "submit", "--title", "t", "--ci", "web-01", "--start", "2030-01-01T22:00Z",
                    "--end", "2030-01-01T23:00Z", "--problem", "PRB-1", "--as", "erin"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert [e.split(": ", 1)[1] for e in errors] == [
        "unknown CI 'nope' (known: web-01, web-02, lb-01, db-prod-1)",
        "--incident 'x' is not an incident id (INC-YYYYMMDD-XXXX)",
        "--problem 'PRB-1' is not a problem id (PRB-YYYYMMDD-XXXX)",
    ]


async def test_a_change_that_cannot_start_leaves_no_dangling_link(env, problems, task_queue):
    """`change submit --problem` links first (the problem's validator decides), then starts
    under exactly that id; when the start fails (here: the id is taken), the problem hears
    the change was canceled."""
    import pytest

    from definitions.change import ChangeType
    from itsmflow.app import change_ops
    from itsmflow.app.change_submit import build_change

    first = await problems.open(ci="web-01", opened_by="erin", title="web-01 leaks memory")
    second = await problems.open(ci="web-02", opened_by="erin", title="web-02 leaks memory")
    for problem in (first, second):
        await problems.act(problem.id, "investigate", ActorInput(actor="erin"))
    changes = Changes(env, task_queue)
    try:
        taken = await raise_change_for(env, task_queue, first.id, "erin")
        changes.ids.append(taken.id)
        now = await env.get_current_time()
        change = build_change(change_id=taken.id, title="Fix the leak", cis=["web-02"], change_type=ChangeType.NORMAL,
                              start=now + timedelta(hours=1), end=now + timedelta(hours=2), requested_by="erin",
                              now=now, policy=registry.get("acme-demo"), problem=second.id)
        with pytest.raises(RuntimeError, match="could not allocate a unique id"):
            await change_ops.submit(env.client, change, task_queue)
    finally:
        await changes.terminate_open()
    status = await problems.eventually(second.id, lambda s: s.changes and s.changes[0].outcome)
    assert [(c.id, c.linked_by, c.outcome) for c in status.changes] == [(taken.id, "erin", "canceled")]
    assert status.state == ProblemState.INVESTIGATING
