"""Worker observability: OpenTelemetry spans for a real run, JSON log lines carrying the
run's context, and one-line errors for telemetry options that cannot work. (Prometheus
metrics are scraped from a real `itsm worker` in tests/cli/test_cli_e2e.py.)"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.workflows.incident_helpers import incidents  # noqa: F401  (fixture)
from worker.main import build_worker
from worker.telemetry import JsonFormatter, tracing_interceptors
from workflows.incident_models import IncidentResolveInput
from workflows.models import ActorInput

SPANS = InMemorySpanExporter()


@pytest.fixture(scope="module")
def tracer_provider():
    """The process-wide provider (OpenTelemetry allows one), exporting to memory."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)
    return provider


async def test_otel_traces_every_workflow_activity_and_update(env, task_queue, db, channel, incidents,
                                                              tracer_provider):
    interceptors = tracing_interceptors(True)
    assert trace.get_tracer_provider() is tracer_provider, "an existing provider is kept"
    SPANS.clear()
    async with build_worker(env.client, task_queue, db=db, channel=channel, interceptors=interceptors):
        status = await incidents.open(impact=3, urgency=3, group="network")
        await incidents.act(status.id, "acknowledge", ActorInput(actor="dave"))
        await incidents.act(status.id, "resolve", IncidentResolveInput(actor="dave", code="fixed"))
    names = [span.name for span in SPANS.get_finished_spans()]
    assert "RunWorkflow:IncidentWorkflow" in names
    assert {"HandleUpdate:acknowledge", "HandleUpdate:resolve"} <= set(names)
    assert names.count("RunActivity:notify") >= 3 and "RunActivity:record_incident" in names
    runs = {span.attributes.get("temporalWorkflowID") for span in SPANS.get_finished_spans()}
    assert status.id in runs


def test_json_log_lines_carry_the_run_context():
    record = logging.LogRecord("temporalio.activity", logging.INFO, __file__, 1, "notification sent", None, None)
    record.temporal_activity = {"workflow_id": "INC-20261125-AB12", "activity_type": "notify", "attempt": 2,
                                "heartbeat_details": [object()]}
    record.itsm = {"key": "INC-20261125-AB12:opened", "channel": "outbox"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "notification sent" and entry["level"] == "info"
    assert entry["workflow_id"] == "INC-20261125-AB12" and entry["attempt"] == 2 and entry["channel"] == "outbox"
    assert "heartbeat_details" not in entry and entry["time"].endswith("Z")


@pytest.mark.parametrize("args, message", [
    (["--metrics-port", "70000"], "--metrics-port: 70000 is not a port number"),
    (["--log-format", "xml"], "Invalid value for '--log-format'"),
])
def test_bad_telemetry_options_are_one_line_errors(args, message):
    done = subprocess.run([sys.executable, "-m", "cli.main", "worker", *args], capture_output=True, text=True,
                          timeout=60, env={"TEMPORAL_ADDRESS": "127.0.0.1:1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
