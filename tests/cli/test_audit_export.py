"""`itsm audit export` against the raw history it is read from: every accepted update,
activity and fired timer is one row, refused attempts are none, in time order."""

from __future__ import annotations

import csv
import io
import json

import pytest
from temporalio.api.enums.v1 import EventType as E

from cli.audit_export import COLUMNS, export_rows, render
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
    assert parsed == [{k: str(v) for k, v in row.items()} for row in rows]
    assert [json.loads(line) for line in render(rows, "jsonl").splitlines()] == rows
