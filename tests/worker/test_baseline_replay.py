"""Runs on the patch baseline (workflows/patches.py) record one patch marker, a start gets
its verdict (the `verify_start` local activity) only under ITSM_AUTH, and notifications and
CMDB calls run as local activities (`itsm-baseline-2`). Either history
replays whether or not the replaying worker has ITSM_AUTH: the markers, not the worker's
configuration, decide the path."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from itsmflow.app import incident_ops
from itsmflow.app.audit import activity_types, local_activity, patch_markers
from itsmflow.app.incident_submit import build_incident
from tests.worker.auth_helpers import generate_key_pem, keyring, signed_client
from worker.auth import Signer
from worker.main import build_replayer, build_worker
from workflows.incident_models import IncidentResolveInput
from workflows.models import ActorInput
from workflows.patches import BASELINE

pytestmark = pytest.mark.asyncio


def replayer_with(keys) -> Replayer:
    """A replayer configured like a worker under ITSM_AUTH (its interceptors hold the keyring)."""
    from worker.auth import worker_interceptor

    plain = build_replayer()
    config = plain.config()
    return Replayer(**{**config, "interceptors": [worker_interceptor(keyring(keys))]})


async def lifecycle(opener, responder, task_queue: str) -> str:
    incident = build_incident(title="disk full", ci="web-01", impact=3, urgency=3, opened_by="erin")
    status, _ = await incident_ops.open_incident(opener, incident, task_queue)
    await incident_ops.update(responder, status.id, "acknowledge", ActorInput(actor="frank"))
    await incident_ops.update(responder, status.id, "resolve", IncidentResolveInput(actor="frank", code="cleaned"))
    return status.id


@pytest.mark.parametrize("under_auth", [False, True], ids=["without-auth", "with-auth"])
async def test_baseline_histories_replay_with_and_without_auth(live, task_queue, db, channel, keys, tracked,
                                                               under_auth):
    keys = {**keys, **{user: (Signer.from_pem(pem), public)
                       for user, (pem, public) in ((u, generate_key_pem()) for u in ("erin", "frank"))}}

    def client(user: str):
        return signed_client(live, keys[user][0]) if under_auth else live.client

    async with build_worker(live.client, task_queue, db=db, channel=channel,
                            keyring=keyring(keys) if under_auth else None):
        incident_id = await lifecycle(client("erin"), client("frank"), task_queue)
        tracked.append(incident_id)
        history = await live.client.get_workflow_handle(incident_id).fetch_history()
    local = [data["activity_type"] for e in history.events if (data := local_activity(e)) is not None]
    assert patch_markers(history) == ({BASELINE, "itsm-verified-every-start"} if under_auth else {BASELINE})
    assert local.count("verify_start") == (1 if under_auth else 0)  # the start's verdict
    # On itsm-baseline-2 the notifications and CMDB calls are local activities: none scheduled.
    # (The CI check and the first page run in lanes of their own: either may be first.)
    assert [name for name in local if name != "verify_start"] == activity_types(history.events)
    assert sorted(activity_types(history.events)) == ["incident_on_ci", "notify", "notify", "notify",
                                                      "record_incident"]
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in history.events)
    recorded = WorkflowHistory.from_json(incident_id, history.to_json())
    for replayer in (build_replayer(), replayer_with(keys)):
        await replayer.replay_workflow(recorded)


async def test_a_failed_local_attempt_is_made_again_as_an_activity_and_audited():
    """The recorded `local-incident-notice-retried` run (the channel down for one send): the
    notification's local attempt failed (its marker holds the failure), the same notification
    was then scheduled as an activity, and the audit trail says both."""
    from pathlib import Path
    from types import SimpleNamespace

    from temporalio.converter import DataConverter

    from itsmflow.app.audit import audit_rows

    path = Path(__file__).parent.parent / "histories" / "local-incident-notice-retried.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    failed = [e for e in history.events if (data := local_activity(e)) is not None
              and data["activity_type"] == "notify" and e.marker_recorded_event_attributes.HasField("failure")]
    assert len(failed) == 1
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    first_scheduled = next(e for e in history.events if e.HasField("activity_task_scheduled_event_attributes"))
    assert scheduled == ["notify"] and first_scheduled.event_id > failed[0].event_id

    rows = await audit_rows(SimpleNamespace(data_converter=DataConverter.default), history)
    steps = [(row["action"], row["details"]) for row in rows if row["actor"] == "system"]
    at = steps.index(("attempt failed", "channel down"))
    assert steps[at - 1][0] == "notify" and steps[at + 1][0] == "notify"  # the local attempt, then the activity
    assert steps[at - 1][1] == steps[at + 1][1]  # one notification: the same summary
