"""`itsm audit export` against the raw history it is read from: every accepted update,
activity and fired timer is one row, refused attempts are none, in time order."""

from __future__ import annotations

import csv
import io
import json

from temporalio.api.enums.v1 import EventType as E

from itsmflow.app.audit_export import COLUMNS, export_rows, render
from tests.workflows.helpers import approve, changes, complete, history_events, implementing, refusal  # noqa: F401


async def test_export_matches_the_raw_history(env, changes):
    status = await implementing(env, changes, approver="carol", requested_by="bob")
    assert await refusal(approve(env, status.id, "bob")) is not None  # refused: never an action
    await complete(env, status.id, "erin")
    rows = await export_rows(env.client, status.id)
    events = await history_events(env, status.id)

    updates = [e.workflow_execution_update_accepted_event_attributes.accepted_request for e in events
               if e.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    human = [(r["actor"], r["action"]) for r in rows if r["actor"] != "system"]
    assert human == [("bob", "submitted")] + [
        (json.loads(u.input.args.payloads[0].data)["actor"], u.input.name) for u in updates if u.input.name != "settle"]
    assert human == [("bob", "submitted"), ("carol", "approve"), ("erin", "complete")]

    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in events
                 if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert [r["action"] for r in rows if r["action"] in set(scheduled)] == scheduled
    fired = [e for e in events if e.event_type == E.EVENT_TYPE_TIMER_FIRED]
    assert len([r for r in rows if r["action"] == "timer fired"]) == len(fired) >= 1
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    assert {(r["process"], r["id"], r["policy"]) for r in rows} == {("change", status.id, "acme-demo@1")}
    assert rows[-1]["action"] == "completed" and not any(r["verified"] for r in rows)

    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert list(parsed[0]) == COLUMNS
    assert parsed == [{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in row.items()} for row in rows]
    assert [json.loads(line) for line in render(rows, "jsonl").splitlines()] == rows


async def test_update_rows_carry_what_changed_and_drop_updates_their_handler_refused():
    """Every field an update carried but its actor is a detail (a reassignment's group, a
    priority's impact and urgency); an update accepted and then failed by its handler (the
    state moved on after the validator) changed nothing, so it is no action."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from temporalio.api.history.v1 import History, HistoryEvent
    from temporalio.contrib.pydantic import pydantic_data_converter

    from itsmflow.app.audit import audit_rows
    from workflows.incident_models import IncidentResolveInput, PriorityInput, ReassignInput

    client = SimpleNamespace(data_converter=pydantic_data_converter)
    history = History()

    def event(kind, second: int) -> HistoryEvent:
        added = history.events.add(event_type=kind)
        added.event_time.FromDatetime(datetime(2026, 3, 2, 9, 0, second, tzinfo=timezone.utc))
        return added

    async def accepted(update_id: str, name: str, arg, second: int) -> None:
        request = event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, second) \
            .workflow_execution_update_accepted_event_attributes.accepted_request
        request.meta.update_id, request.input.name = update_id, name
        request.input.args.payloads.extend(await pydantic_data_converter.encode([arg]))

    def completed(update_id: str, second: int, failed: bool) -> None:
        attrs = event(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, second) \
            .workflow_execution_update_completed_event_attributes
        attrs.meta.update_id = update_id
        if failed:
            attrs.outcome.failure.message = "incident INC-1 is already resolved"
        else:
            attrs.outcome.success.SetInParent()

    await accepted("u1", "reassign", ReassignInput(actor="dave", group="network", reason="BGP"), 1)
    completed("u1", 1, failed=False)
    await accepted("u2", "priority", PriorityInput(actor="dave", impact=1, urgency=2), 2)
    await accepted("u3", "resolve", IncidentResolveInput(actor="erin", code="fixed"), 3)
    completed("u3", 3, failed=True)
    completed("u2", 4, failed=False)

    rows = await audit_rows(client, history)
    assert [(r["actor"], r["action"], r["details"]) for r in rows] == [
        ("dave", "reassign", "group: network; reason: BGP"),
        ("dave", "priority", "impact: 1; urgency: 2"),
    ]


def test_every_kind_of_run_names_the_definition_that_governs_it():
    """A manual task carries no policy or catalog, only the organisation that says who may
    act on it: its rows name that, not nothing."""
    from itsmflow.app.audit import policy_of
    from itsmflow.app.request_submit import build_request
    from workflows.request_models import ManualTaskInput

    request = build_request(item_name="laptop", raw={"model": "pro-16", "justification": "dev"}, requested_by="alice")
    task = ManualTaskInput(id="TASK-1", item_id="RITM-1", request_id=request.id, title="Ship it", group="desk",
                           requested_for="alice", organisation=request.organisation)
    assert policy_of(request.model_dump(mode="json")) == request.catalog
    assert policy_of(task.model_dump(mode="json")) == f"{request.organisation.name}@{request.organisation.version}"
    assert policy_of({}) == ""
