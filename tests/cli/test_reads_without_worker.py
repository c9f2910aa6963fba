"""Reads need no worker (issue 13): a run keeps its status in its memo, one upsert per
workflow task at most, and `show` answers from it when no worker does, saying as of when
and why it may be stale."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from temporalio.api.enums.v1 import EventType

from itsmflow.app import change_ops, incident_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.incident_submit import build_incident
from tests.cli.test_start_waiting import itsm, killed_worker
from worker.main import build_worker
from workflows.base import MEMO_STATUS, compact_status
from workflows.incident_models import NoteInput
from workflows.models import ActorInput


def build_change_input():
    from datetime import datetime, timezone

    from definitions.change import ChangeType
    from itsmflow.app.ids import new_id

    start = datetime(2030, 1, 1, 22, tzinfo=timezone.utc)
    return build_change(change_id=new_id("CHG"), title="Patch web-02", cis=["web-02"], change_type=ChangeType.NORMAL,
                        start=start, end=start + timedelta(hours=1), requested_by="alice",
                        now=datetime.now(timezone.utc))


async def upserts_per_task(client, run_id: str) -> list[int]:
    """How many memo upserts each completed workflow task made."""
    counts: list[int] = []
    async for event in client.get_workflow_handle(run_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            counts.append(0)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            counts[-1] += 1
    return counts


async def test_show_answers_from_the_memo_when_no_worker_does(live, task_queue, db, channel, tmp_path):
    incident = build_incident(title="Checkout is down", ci="lb-01", impact=1, urgency=1, opened_by="alice")
    async with build_worker(live.client, task_queue, db=db, channel=channel):
        change = await change_ops.submit(live.client, build_change_input(), task_queue)
        opened, _ = await incident_ops.open_incident(live.client, incident, task_queue)
        acked = await incident_ops.update(live.client, opened.id, "acknowledge", ActorInput(actor="dave"))
        for number in range(12):  # past the memo's timeline tail
            await incident_ops.update(live.client, opened.id, "note", NoteInput(actor="dave", text=f"note {number}"))
        live_show = await asyncio.to_thread(itsm, live, task_queue, "incident", "show", opened.id, "--json")
    try:
        assert acked.state.value == "in_progress"
        # What the run published is what a query answered, compact; never two upserts in one task.
        memo = await (await live.client.get_workflow_handle(opened.id).describe()).memo()
        assert memo[MEMO_STATUS]["value"]["state"] == "in_progress"
        published = {k: v for k, v in memo[MEMO_STATUS].items() if k not in ("at", "actions")}
        assert published == compact_status(json.loads(live_show.stdout))
        # Who may act now, for the inbox, links and chat: the assigned group or incident managers.
        assert memo[MEMO_STATUS]["actions"] == [{"action": name, "groups": ["network", "major-incident"], "users": []}
                                                for name in ("resolve", "hold")]
        change_memo = await (await live.client.get_workflow_handle(change.id).describe()).memo()
        assert change_memo[MEMO_STATUS]["actions"] == [
            {"action": "approve", "groups": ["change-managers"], "users": []},
            {"action": "reject", "groups": ["change-managers"], "users": []},
            {"action": "cancel", "groups": ["change-managers"], "users": ["alice"]}]
        counts = await upserts_per_task(live.client, opened.id)
        assert max(counts) == 1 and sum(counts) >= 14, counts

        await killed_worker(live, task_queue, tmp_path)  # its poller is listed for minutes: the query times out
        shown = await asyncio.to_thread(itsm, live, task_queue, "incident", "show", opened.id)
        assert shown.returncode == 0, shown.stderr
        assert "in_progress" in shown.stdout and "acknowledged by dave" in shown.stdout
        timeline = shown.stdout.splitlines()
        start = timeline.index("  timeline")
        events = len(json.loads(live_show.stdout)["events"])
        assert timeline[start + 1] == f"    … {events - 10} more event(s): itsm runs history {opened.id}"
        assert "note 11" in shown.stdout and "note 0\n" not in shown.stdout
        assert timeline[-1].endswith("may be stale: no worker answered in 5s"), timeline[-1]
        as_json = await asyncio.to_thread(itsm, live, task_queue, "change", "show", change.id, "--json")
        assert as_json.returncode == 0, as_json.stderr
        document = json.loads(as_json.stdout)
        assert (document["state"], document["id"]) == ("authorize", change.id)
        assert document["stale"] == "no worker answered in 5s" and document["as_of"]
    finally:
        for run_id in (opened.id, change.id):
            await live.client.get_workflow_handle(run_id).terminate("test finished")


async def test_a_run_no_worker_took_up_says_so_at_once(live, task_queue):
    change = build_change_input()
    await live.client.start_workflow("ChangeWorkflow", change, id=change.id, task_queue=task_queue)
    try:
        never = await asyncio.to_thread(itsm, live, task_queue, "change", "show", change.id)
        assert (never.returncode, never.stdout) == (1, "")
        assert never.stderr == (f"itsm: {change.id} has published no status yet, and no worker is polling its task "
                                "queue (is `itsm worker` running?)\n")
    finally:
        await live.client.get_workflow_handle(change.id).terminate("test finished")
