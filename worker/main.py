"""Builds and runs the itsm worker: workflows, activity instances, CMDB seed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.channels import Channel, channel_from_env
from activities.cmdb import CmdbActivities, seed
from activities.db import DEFAULT_URL, Database
from activities.fulfillment import FulfillmentActivities
from activities.notify import NotifyActivities
from activities.webhook import WebhookActivities
from definitions import registry
from definitions.org import Organisation
from workflows.change import ChangeWorkflow
from workflows.incident import IncidentWorkflow
from workflows.incident_dedup import IncidentDedupWorkflow
from workflows.item import ItemWorkflow
from workflows.request import RequestWorkflow
from workflows.task import ManualTaskWorkflow

WORKFLOWS = [ChangeWorkflow, IncidentWorkflow, IncidentDedupWorkflow, RequestWorkflow, ItemWorkflow, ManualTaskWorkflow]
PASSTHROUGH = ("pydantic", "pydantic_core", "annotated_types", "definitions", "activities", "jinja2")


def database_from_env() -> Database:
    return Database(os.environ.get("ITSM_DB_URL", DEFAULT_URL))


def activities_for(db: Database, channel: Channel, fulfillment: FulfillmentActivities | None = None) -> list:
    cmdb = CmdbActivities(db)
    notify = NotifyActivities(db, channel)
    webhook = WebhookActivities(db)
    fulfillment = fulfillment or FulfillmentActivities(db)
    return [cmdb.find_conflicts, cmdb.reserve_calendar, cmdb.release_calendar, cmdb.record_change,
            cmdb.record_incident, cmdb.impacted_services, notify.notify, webhook.post_webhook,
            fulfillment.run_action, fulfillment.undo_action]


def build_worker(
    client: Client,
    task_queue: str,
    db: Database | None = None,
    channel: Channel | None = None,
    organisation: str | None = None,
    fulfillment: FulfillmentActivities | None = None,
    **options,
) -> Worker:
    """A worker for every process; seeds the CMDB from the organisation definition."""
    db = db or database_from_env()
    db.migrate()
    seed(db, registry.get(organisation or os.environ.get("ITSM_ORG", "acme"), Organisation))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities_for(db, channel or channel_from_env(), fulfillment),
        activity_executor=ThreadPoolExecutor(max_workers=16),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
        **options,
    )


async def run_worker(client: Client, task_queue: str, stop: asyncio.Event | None = None) -> None:
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
    async with build_worker(client, task_queue):
        await stop.wait()
