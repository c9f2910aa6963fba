"""Builds and runs the itsm worker: workflows, activity instances, CMDB seed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.channels import Channel, channel_from_env
from activities.cmdb import CmdbActivities, seed
from activities.db import DEFAULT_URL, Database
from activities.fulfillment import FulfillmentActivities
from activities.grants import GrantActivities
from activities.notify import NotifyActivities
from activities.problems import ProblemActivities
from activities.webhook import WebhookActivities
from definitions import registry
from definitions.org import Organisation
from definitions.problem import ProblemPolicy
from itsmflow.process import WorkerContext, resolve
from itsmflow.processes import processes
from worker.auth import Keyring, StartVerifier, keyring_from_env, worker_client, worker_interceptor
from worker.bounds import bounds_interceptor
from worker.runner import ProcessRunner


def workflow_classes() -> list:
    """Every loaded process's workflows (the worker refuses to start when one fails to load)."""
    return [resolve(path) for process in processes(strict=True) for path in process.workflows]


IDENTITY_MARK = "itsm-processes:"
LIVE_POLL = 70.0  # seconds: a live worker re-polls within the server's long-poll interval (60 s)


def worker_identity() -> str:
    """pid@host, and the digest of the process set it serves: every worker on a queue must
    serve the same set (`check_process_set`)."""
    import socket

    from itsmflow.processes import digest

    return f"{os.getpid()}@{socket.gethostname()} {IDENTITY_MARK}{digest(processes(strict=True))}"


class MismatchedWorkers(Exception):
    """Another worker on the queue serves a different set of processes."""


async def check_process_set(client: Client, task_queue: str, identity: str, live_poll: float = LIVE_POLL) -> None:
    """Refuse to join a queue where a live worker serves another set of processes. One that
    died lately is still listed (for about 5 minutes): a poller counts as live only once it
    polls again (its last access moves on), within `live_poll` seconds."""
    import time

    from itsmflow.app.ops import pollers

    ours = identity.rpartition(IDENTITY_MARK)[2]

    async def others() -> dict[str, float]:
        return {p.identity: p.last_access_time.ToDatetime().timestamp() for p in await pollers(client, task_queue)
                if IDENTITY_MARK in p.identity and p.identity.rpartition(IDENTITY_MARK)[2] != ours}

    suspects = {who: at for who, at in (await others()).items() if time.time() - at < live_poll}
    deadline = time.monotonic() + live_poll
    while suspects and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        later = await others()
        alive = [who for who, at in suspects.items() if later.get(who, at) > at]
        if alive:
            theirs = alive[0].rpartition(IDENTITY_MARK)[2]
            raise MismatchedWorkers(
                f"worker {alive[0].partition(' ')[0]} on task queue {task_queue!r} serves another set of processes "
                f"({theirs}; this worker's is {ours}): every worker on a queue must serve the same processes")
        suspects = {who: at for who, at in suspects.items() if time.time() - at < live_poll}


def process_activities(context: WorkerContext) -> list:
    """The activities processes declare beside the kit's (`Process.activities`)."""
    return [activity for process in processes(strict=True) if process.activities
            for activity in resolve(process.activities)(context)]



# Worker tuning, each overridable from the environment (unset: the value here).
TUNING = {
    # Runs kept in memory between their workflow tasks (the SDK's default is 1000). A run that
    # is not cached replays its whole history on its next task: with more open runs than this,
    # a burst of timers (1000 escalations due at once) replays them all.
    "ITSM_MAX_CACHED_WORKFLOWS": ("max_cached_workflows", None),
    "ITSM_MAX_CONCURRENT_WORKFLOW_TASKS": ("max_concurrent_workflow_tasks", None),  # SDK: 100
    "ITSM_WORKFLOW_TASK_POLLERS": ("workflow_task_pollers", None),  # SDK: 5
    "ITSM_MAX_CONCURRENT_ACTIVITIES": ("max_concurrent_activities", None),  # SDK: 100
    "ITSM_ACTIVITY_TASK_POLLERS": ("activity_task_pollers", None),  # SDK: 5
    "ITSM_ACTIVITY_THREADS": ("activity_threads", 16),
    # Seconds a task waits on this worker's sticky queue before the server gives it to any
    # worker (SDK: 10): past it, a backlog turns into timed-out tasks and full replays.
    "ITSM_STICKY_SCHEDULE_TO_START_TIMEOUT": ("sticky_schedule_to_start_seconds", None),
}


def tuning_from_env(environ=None) -> dict[str, int]:
    """The worker options TUNING names, from the environment or their defaults (None: the SDK's)."""
    environ = os.environ if environ is None else environ
    tuning = {}
    for variable, (option, default) in TUNING.items():
        raw = environ.get(variable, "").strip()
        value: int | None
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{variable} must be a whole number, not {raw!r}") from None
            if value < (0 if option == "max_cached_workflows" else 1):
                raise ValueError(f"{variable} must be at least {0 if option == 'max_cached_workflows' else 1}")
        else:
            value = default
        if value is not None:
            tuning[option] = value
    return tuning


def tuned_options(options: dict) -> dict:
    """Worker keyword options from the environment's tuning, explicit `options` winning."""
    from temporalio.worker import PollerBehaviorSimpleMaximum

    tuning = {**tuning_from_env(), **options}
    threads = tuning.pop("activity_threads", 16)
    for poller in ("workflow_task", "activity_task"):
        if f"{poller}_pollers" in tuning:
            tuning[f"{poller}_poller_behavior"] = PollerBehaviorSimpleMaximum(maximum=tuning.pop(f"{poller}_pollers"))
    if "sticky_schedule_to_start_seconds" in tuning:
        tuning["sticky_queue_schedule_to_start_timeout"] = timedelta(
            seconds=tuning.pop("sticky_schedule_to_start_seconds"))
    tuning.setdefault("activity_executor", ThreadPoolExecutor(max_workers=threads))
    return tuning


def database_from_env() -> Database:
    return Database(os.environ.get("ITSM_DB_URL", DEFAULT_URL))


def problem_policy_from_env() -> ProblemPolicy:
    return registry.get(os.environ.get("ITSM_PROBLEM_POLICY", registry.DEFAULT_PROBLEM_POLICY), ProblemPolicy)


def activities_for(db: Database, channel: Channel, fulfillment: FulfillmentActivities | None = None,
                   problems: ProblemActivities | None = None) -> list:
    """`problems` needs a Temporal client: without one, incidents on a CI wait for a worker that has it."""
    cmdb = CmdbActivities(db)
    notify = NotifyActivities(db, channel)
    webhook = WebhookActivities(db)
    fulfillment = fulfillment or FulfillmentActivities(db)
    grants = GrantActivities(db)  # the kit's read of grants, for any process that reviews them
    return [cmdb.find_conflicts, cmdb.reserve_calendar, cmdb.release_calendar, cmdb.record_change,
            cmdb.record_incident, cmdb.impacted_services, notify.notify, webhook.post_webhook,
            fulfillment.run_action, fulfillment.undo_action, cmdb.record_known_error, cmdb.claim_problem_ci,
            cmdb.problem_ended, grants.list_grants, grants.revoke_grant,
            *([problems.incident_on_ci, problems.release_stale_problem] if problems else [])]


def cache_workflow_bytecode() -> None:
    """The sandbox re-imports each workflow module for every new run; without cached
    bytecode (PYTHONDONTWRITEBYTECODE, a fresh checkout) that is a compile per run, about
    a third of a short incident's worker time. Compile the stale ones once, here."""
    import compileall

    import workflows

    try:
        compileall.compile_dir(Path(workflows.__file__).parent, quiet=2, workers=1)
    except OSError:  # a read-only install keeps whatever bytecode it shipped with
        pass


def build_worker(
    client: Client,
    task_queue: str,
    db: Database | None = None,
    channel: Channel | None = None,
    organisation: str | None = None,
    fulfillment: FulfillmentActivities | None = None,
    keyring: Keyring | None = None,
    problem_policy: ProblemPolicy | None = None,
    **options,
) -> Worker:
    """A worker for every process; seeds the CMDB from the organisation definition.
    With ITSM_AUTH on (or a `keyring`), actors are verified against that definition's keys."""
    cache_workflow_bytecode()
    registry.check_all()  # a worker runs on every definition: none may be broken
    db = db or database_from_env()
    db.migrate()
    org = registry.get(organisation or os.environ.get("ITSM_ORG", "acme"), Organisation)
    seed(db, org)
    keyring = keyring if keyring is not None else keyring_from_env(org)
    channel = channel or channel_from_env()
    signing = worker_client(client, keyring)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflow_classes(),
        activities=[*activities_for(db, channel, fulfillment,
                                    ProblemActivities(db, signing, problem_policy or problem_policy_from_env())),
                    *process_activities(WorkerContext(db=db, channel=channel, organisation=org, client=signing)),
                    StartVerifier(keyring).verify_start],
        interceptors=[*options.pop("interceptors", []), bounds_interceptor(), worker_interceptor(keyring)],
        workflow_runner=ProcessRunner(),
        **tuned_options(options),
    )


def build_replayer(sandbox_all: bool | None = None):
    """A Replayer configured exactly like the worker's workflow side (runners, interceptors);
    `sandbox_all`: the built-in processes in the sandbox too (worker/runner.py)."""
    from temporalio.worker import Replayer

    from worker.converter import data_converter

    return Replayer(
        workflows=workflow_classes(), data_converter=data_converter(), interceptors=[worker_interceptor(None)],
        workflow_runner=ProcessRunner(sandbox_all),
    )


async def run_worker(client: Client, task_queue: str, stop: asyncio.Event | None = None,
                     interceptors: list | None = None) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM arrives, then shut down gracefully."""
    from worker.connect import register_search_attributes

    try:
        await register_search_attributes(client)
    except Exception as err:  # e.g. a Cloud namespace where the API key may not add them
        logging.getLogger("itsm.worker").warning("could not register search attributes: %s", err)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    identity = worker_identity()
    await check_process_set(client, task_queue, identity)
    async with build_worker(client, task_queue, interceptors=interceptors or [], identity=identity):
        await stop.wait()
