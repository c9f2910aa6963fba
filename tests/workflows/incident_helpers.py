"""Helpers for incident tests: small exact policies, opening at fake times, cleanup."""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from definitions import acme
from definitions.incident import EscalationPolicy, EscalationStep, IncidentPolicy, StepKind
from itsmflow.app import incident_ops
from itsmflow.app.incident_submit import build_incident
from workflows.incident_models import IncidentStatus

MINUTE = timedelta(minutes=1)


def policy(*steps: EscalationStep, group: str = "network", **changes) -> IncidentPolicy:
    """acme-incident with one escalation policy (for `group`) made of `steps`."""
    base = acme.INCIDENT_POLICY
    escalation = EscalationPolicy(name="test", group=group, steps=list(steps))
    others = [p for p in base.escalation_policies if p.group != group]
    return base.model_copy(update={"escalation_policies": [escalation, *others], **changes})


def page(user: str, delay: timedelta = timedelta(0)) -> EscalationStep:
    return EscalationStep(kind=StepKind.NOTIFY_USER, user=user, delay=delay)


class Incidents:
    """Opens incidents on a task queue and terminates whatever is still open at the end."""

    def __init__(self, env, task_queue: str) -> None:
        self.env, self.task_queue, self.ids = env, task_queue, []

    async def open(self, incident_policy: IncidentPolicy | None = None, **fields) -> IncidentStatus:
        fields = {"title": "lb-01 down", "ci": "lb-01", "impact": 1, "urgency": 1, "opened_by": "alice", **fields}
        incident = build_incident(**fields)
        if incident_policy is not None:
            incident = incident.model_copy(update={"policy": incident_policy})
        status, attached = await incident_ops.open_incident(self.env.client, incident, self.task_queue)
        self.ids.append(status.id)
        return status

    async def act(self, incident_id: str, name: str, arg) -> IncidentStatus:
        return await incident_ops.update(self.env.client, incident_id, name, arg)

    async def show(self, incident_id: str) -> IncidentStatus:
        return await incident_ops.status(self.env.client, incident_id)

    async def close_all(self) -> None:
        from temporalio.service import RPCError

        for incident_id in dict.fromkeys(self.ids):
            handle = self.env.client.get_workflow_handle(incident_id)
            try:
                if (await handle.describe()).status.name == "RUNNING":
                    await handle.terminate("test finished")
            except RPCError:  # never started
                pass


async def skip_to(env, moment: datetime) -> None:
    now = await env.get_current_time()
    assert moment >= now, f"{moment} is in the fake past ({now})"
    await env.sleep(moment - now)


def next_weekday_at(now: datetime, weekday: int, hour: int) -> datetime:
    """The next `weekday` (0 = Monday) at `hour`:00 UTC strictly after `now`, at least a day away."""
    day = (now + timedelta(days=1)).astimezone(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0)
    while day.weekday() != weekday or day <= now:
        day += timedelta(days=1)
    return day


def page_times(status: IncidentStatus) -> list[tuple[timedelta, str]]:
    """(offset from open, details) of every page in the timeline."""
    return [(e.time - status.opened_at, e.details) for e in status.events
            if e.action == "escalation" and "paged" in e.details]


@pytest.fixture
async def incidents(env, task_queue):
    tracker = Incidents(env, task_queue)
    yield tracker
    await tracker.close_all()


@contextmanager
def webhook_receiver(status: int = 204):
    """A real local HTTP server answering every POST with `status`; yields its URL and the
    (Idempotency-Key, JSON body) of each request received. While it runs, ITSM_WEBHOOK_ALLOW
    lists exactly its 127.0.0.1:port, so a worker built inside the block may post to it."""
    received: list[tuple[str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server hook name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers["Idempotency-Key"], body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    listed = os.environ.get("ITSM_WEBHOOK_ALLOW")
    os.environ["ITSM_WEBHOOK_ALLOW"] = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page", received
    finally:
        if listed is None:
            del os.environ["ITSM_WEBHOOK_ALLOW"]
        else:
            os.environ["ITSM_WEBHOOK_ALLOW"] = listed
        server.shutdown()
