"""Builds and runs the itsm worker: workflows, activity instances, CMDB seed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.channels import Channel, channel_from_env
from activities.cmdb import CmdbActivities, seed
from activities.db import DEFAULT_URL, Database
from activities.fulfillment import FulfillmentActivities
from activities.notify import NotifyActivities
from activities.problems import ProblemActivities
from activities.webhook import WebhookActivities
from definitions import registry
from definitions.org import Organisation
from definitions.problem import ProblemPolicy
from worker.auth import Keyring, StartVerifier, keyring_from_env, worker_client, worker_interceptor
from worker.bounds import bounds_interceptor
from workflows.change import ChangeWorkflow
from workflows.incident import IncidentWorkflow
from workflows.incident_dedup import IncidentDedupWorkflow
from workflows.item import ItemWorkflow
from workflows.problem import ProblemWorkflow
from workflows.request import RequestWorkflow
from workflows.task import ManualTaskWorkflow

WORKFLOWS = [ChangeWorkflow, IncidentWorkflow, IncidentDedupWorkflow, RequestWorkflow, ItemWorkflow, ManualTaskWorkflow,
             ProblemWorkflow]
# `from workflows import escalation, sla` re-ran those pure modules in the sandbox for every
# new run (the package itself is re-imported with the workflow module): name them here.
PASSTHROUGH = ("pydantic", "pydantic_core", "annotated_types", "definitions", "activities", "jinja2", "cryptography",
               "opentelemetry", "workflows.escalation", "workflows.sla")


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
    return [cmdb.find_conflicts, cmdb.reserve_calendar, cmdb.release_calendar, cmdb.record_change,
            cmdb.record_incident, cmdb.impacted_services, notify.notify, webhook.post_webhook,
            fulfillment.run_action, fulfillment.undo_action, cmdb.record_known_error, cmdb.claim_problem_ci,
            cmdb.problem_ended, *([problems.incident_on_ci] if problems else [])]


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
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*activities_for(db, channel or channel_from_env(), fulfillment,
                                    ProblemActivities(db, worker_client(client, keyring),
                                                      problem_policy or problem_policy_from_env())),
                    StartVerifier(keyring).verify_start],
        interceptors=[*options.pop("interceptors", []), bounds_interceptor(), worker_interceptor(keyring)],
        activity_executor=ThreadPoolExecutor(max_workers=16),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
        **options,
    )


def build_replayer():
    """A Replayer configured exactly like the worker's workflow side (sandbox, interceptors)."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    return Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter, interceptors=[worker_interceptor(None)],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
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
    async with build_worker(client, task_queue, interceptors=interceptors or []):
        await stop.wait()
