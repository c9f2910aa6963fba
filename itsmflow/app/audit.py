"""The audit trail of a run, read from its own Temporal history: human actions (updates
with their actor), system steps (activities and timers, by their summaries) and state
changes. Never raw inputs: the policy snapshot holds the whole directory."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

INTERNAL_UPDATES = {"settle"}


async def _decode(client, payloads) -> list[Any]:
    if not payloads:
        return []
    return list(await client.data_converter.decode(list(payloads)))


async def _summary(client, event) -> str:
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return ""
    values = await _decode(client, [event.user_metadata.summary])
    return str(values[0]) if values else ""


LOCAL_ACTIVITY_MARKER = "core_local_activity"
# The worker's own local activity (the start's verdict under ITSM_AUTH): the row for the start
# says whether it was verified.
UNLISTED_ACTIVITIES = {"verify_start"}


def local_activity(event) -> dict | None:
    """What a local activity's marker records of it (`activity_type`, `attempt`, ...), or
    None for any other event. Runs on `itsm-baseline-2` send notifications and call the CMDB
    this way (workflows/patches.py)."""
    if not event.HasField("marker_recorded_event_attributes"):
        return None
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attrs.details:
        return None
    payload = attrs.details["data"].payloads[0]
    try:  # written by the SDK's core as plain JSON, never through the payload codec
        data = json.loads(payload.data)
    except ValueError:
        return {"activity_type": "local activity"}
    return data if isinstance(data, dict) else {"activity_type": "local activity"}


def local_step(event) -> str | None:
    """The activity type of a local activity's marker that belongs in the trail (not the
    worker's start verdict), or None."""
    data = local_activity(event)
    if data is None:
        return None
    name = str(data.get("activity_type", "local activity"))
    return None if name in UNLISTED_ACTIVITIES else name


def activity_types(events) -> list[str]:
    """The activities a history ran, in order: scheduled ones and local ones (by their
    markers), but the worker's start verdict. A local attempt that failed and was made again
    as an activity (workflows/base.py, `_local_first`) counts twice."""
    names = []
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif (name := local_step(event)) is not None:
            names.append(name)
    return names


def _row(moment: datetime, actor: str, action: str, details: str, verified: bool = False, channel: str = "") -> dict:
    row = {"time": moment, "actor": actor, "action": action, "details": details}
    if verified:
        row["verified"] = True
    if channel:  # the front end a person acted through (cli, api, link, chat, integration:<name>)
        row["channel"] = channel
    return row


def _claimed(arg: dict, field: str | None = None) -> str:
    """The user an update names: its action's declared actor field, else any field that names
    who acts (every declaration's), else the opener of a routed incident."""
    from itsmflow.processes import claim_fields

    for name in (field, *claim_fields()) if field else claim_fields():
        if isinstance(arg.get(name), str):
            return arg[name]
    nested = arg.get("incident")
    return _claimed(nested) if isinstance(nested, dict) else "unknown"


def _signed(*holders) -> bool:
    """An ITSM_AUTH credential travelled with the call (the worker verified it to accept it)."""
    from worker.auth import HEADER

    return any(holder.HasField("header") and HEADER in holder.header.fields for holder in holders
               if hasattr(holder, "header"))


def policy_of(start: dict) -> str:
    """name@version of the definition that governs a run, from its start input: its policy,
    its catalog, or (a manual task, which only says who may act on it) its organisation."""
    policy = start.get("policy") or {}
    if policy.get("name"):
        return f"{policy['name']}@{policy.get('version')}"
    catalog = start.get("catalog") or (start.get("plan") or {}).get("catalog")
    if catalog:
        return catalog
    organisation = start.get("organisation") or {}
    return f"{organisation['name']}@{organisation.get('version')}" if organisation.get("name") else ""


def _details(args: list) -> str:
    """What a signal or update carried, as `key: value; ...` (an id, an outcome, a new
    group), or the bare value."""
    parts = []
    for arg in args:
        if isinstance(arg, dict):
            parts += [f"{key}: {value}" for key, value in arg.items() if isinstance(value, (str, int,
                                                                                            float)) and value != ""]
        elif isinstance(arg, (str, int, float)):
            parts.append(str(arg))
    return "; ".join(parts)


async def audit_rows(client, history) -> list[dict]:
    """One row per human action or system step, in history order."""
    from temporalio.api.enums.v1 import EventType as E

    from itsmflow.app.channel import channel_of
    from itsmflow.processes import claim_fields, of_workflow_type
    from worker.connect import failure_message

    identity = claim_fields()  # who acted is the row's actor, not one of its details
    process = None
    rows: list[dict] = []
    timers: dict[int, str] = {}
    updates: dict[str, dict] = {}  # update id -> its row, until the update completes
    policy = ""
    checked = _signals_checked(history)
    for event in history.events:
        moment = event.event_time.ToDatetime(tzinfo=timezone.utc)
        kind = event.event_type
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            process = of_workflow_type(attrs.workflow_type.name)
            args = await _decode(client, attrs.input.payloads)
            start = args[0] if args and isinstance(args[0], dict) else {}
            policy = policy_of(start)
            carried = start.get("carried")
            if carried:
                rows.append(_row(moment, "system", "continued", f"run {carried.get('runs', 1) + 1}"))
                continue
            scope = start.get("change_type") or (f"impact {start['impact']}/urgency {start['urgency']}"
                                                 if "impact" in start else "")
            details = ", ".join(
                part for part in (
                    start.get("title"), scope, ",".join(start.get("cis") or ([start["ci"]] if start.get("ci") else [])),
                    f"policy {policy}" if policy else "",
                ) if part
            )
            starter = process.starter if process else None
            actor = (start.get(starter) if starter else None) or start.get("requested_by") or start.get("opened_by") \
                or "system"
            rows.append(_row(moment, actor, "opened" if "opened_by" in start else "submitted", details,
                             verified=_signed(attrs), channel=channel_of(attrs)))
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            name = request.input.name
            if name in INTERNAL_UPDATES:
                continue
            args = await _decode(client, request.input.args.payloads)
            arg = args[0] if args and isinstance(args[0], dict) else {}
            details = _details([{k: v for k, v in arg.items() if k not in identity}])
            action = next((a for a in process.actions if a.update == name), None) if process else None
            updates[request.meta.update_id] = _row(moment, _claimed(arg, action.actor_field if action else None), name,
                                                   details, verified=_signed(request.meta, request.input),
                                                   channel=channel_of(request.input))
            rows.append(updates[request.meta.update_id])
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            # An update its handler refused after acceptance (the state moved on between the
            # validator and the handler) changed nothing: not an action.
            attrs = event.workflow_execution_update_completed_event_attributes
            row = updates.pop(attrs.meta.update_id, None)
            if row is not None and attrs.outcome.HasField("failure"):
                rows[:] = [other for other in rows if other is not row]
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            rows.append(_row(moment, "system", attrs.activity_type.name, await _summary(client, event)))
        elif kind == E.EVENT_TYPE_MARKER_RECORDED and (name := local_step(event)) is not None:
            attrs = event.marker_recorded_event_attributes
            rows.append(_row(moment, "system", name, await _summary(client, event)))
            if attrs.HasField("failure"):  # a retry, if any, follows as an activity
                rows.append(_row(moment, "system", "attempt failed", await failure_message(client, attrs.failure)))
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failure = event.activity_task_failed_event_attributes.failure
            rows.append(_row(moment, "system", "activity failed", await failure_message(client, failure)))
        elif kind == E.EVENT_TYPE_TIMER_STARTED:
            timers[event.event_id] = await _summary(client, event)
        elif kind == E.EVENT_TYPE_TIMER_FIRED:
            started = event.timer_fired_event_attributes.started_event_id
            rows.append(_row(moment, "system", "timer fired", timers.get(started, "")))
        elif kind == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if "ItsmState" in fields:
                state = json.loads(fields["ItsmState"].data)
                rows.append(_row(moment, "system", "state", state))
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            args = await _decode(client, attrs.input.payloads)
            signed = _signed(attrs)
            dropped = " (dropped: no worker credential)" if checked and not signed else ""
            rows.append(_row(moment, "system", f"signal {attrs.signal_name}{dropped}", _details(args),
                             verified=signed))
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            rows.append(_row(moment, "system", "completed", ""))
        elif kind in (E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                      E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED):
            rows.append(_row(moment, "system", E.Name(kind).removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_").lower(), ""))
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            rows.append(_row(moment, "system", "continued as new", ""))
    return [{**row, "policy": policy} for row in rows]


def _signals_checked(history) -> bool:
    """The worker checked this run's signals (ITSM_AUTH): it dropped those without its credential."""
    from worker.auth import SIGNALS_PATCH
    from workflows.patches import took

    return took(patch_markers(history), SIGNALS_PATCH)


def patch_markers(history) -> set[str]:
    """The patch ids whose markers the history records."""
    import json

    return {json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data).get("id", "")
            for e in history.events if e.HasField("marker_recorded_event_attributes")
            and e.marker_recorded_event_attributes.marker_name == "core_patch"}


def child_ids(history) -> list[str]:
    """The children that are part of this run's trail: runs of a process declared `child_of`
    another (a request's items and tasks). A run of its own that this one started (the problem
    an incident suggests) has a trail of its own."""
    from temporalio.api.enums.v1 import EventType as E

    from itsmflow.processes import of_id

    started = [e.start_child_workflow_execution_initiated_event_attributes.workflow_id for e in history.events
               if e.event_type == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
    return [child for child in started if (process := of_id(child)) is None or process.child_of]


async def run_histories(client, workflow_id: str) -> list:
    """Every run of a workflow id, oldest first (an incident continues as new), followed
    back from the latest run through each start event's previous run id: exact, and
    independent of visibility lag."""
    histories, run_id = [], None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return histories[::-1]


async def audit_trail(client, run_id: str, children: bool = True) -> list[dict]:
    """The run's rows (every run of its id) and those of the children it started
    (request → items → tasks), each tagged with its run id, in time order."""
    rows = []
    for history in await run_histories(client, run_id):
        rows += [{**row, "run": run_id} for row in await audit_rows(client, history)]
        if children:
            for child in child_ids(history):
                rows += await audit_trail(client, child)
    return sorted(rows, key=lambda row: row["time"])
