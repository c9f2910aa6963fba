"""Worker observability: Prometheus metrics (the SDK's own plus itsm counters), optional
OpenTelemetry tracing, and structured (JSON lines) logs.

The metrics runtime must exist before the client connects (a client is bound to the
runtime it was created on), so the worker configures telemetry first, then connects."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

LOG_FORMATS = ("json", "text")


class TelemetryError(Exception):
    """A telemetry option that cannot be honoured (one line, exit 2)."""


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, plus the workflow or activity
    context temporalio attaches (`temporal_workflow` / `temporal_activity` extras) and any
    `itsm` extra, so log lines can be joined to runs by workflow id."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        for extra in ("temporal_workflow", "temporal_activity", "itsm"):
            value = getattr(record, extra, None)
            if isinstance(value, dict):
                entry.update({k: v for k, v in value.items() if isinstance(v, (str, int, float, bool)) or v is None})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: str, level: str = "INFO") -> None:
    """Worker logs on stderr: JSON lines (default) or plain text for a terminal."""
    if fmt not in LOG_FORMATS:
        raise TelemetryError(f"--log-format: {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if fmt == "json":  # the run's context goes in fields, not appended to the message
        from temporalio import activity, workflow

        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False


_configured = False


def configure_runtime(metrics_port: int | None = None, metrics_host: str = "0.0.0.0", replace: bool = True) -> None:
    """The process's default temporalio runtime: SDK core logs only errors (no noise on
    stderr) and, with a metrics port, a Prometheus endpoint at http://HOST:PORT/metrics
    with the SDK's worker metrics and itsm's own counters."""
    global _configured
    if _configured and not replace:
        return
    from temporalio.runtime import LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig, TelemetryFilter

    metrics = None
    if metrics_port is not None:
        if not 0 < metrics_port < 65536:
            raise TelemetryError(f"--metrics-port: {metrics_port} is not a port number")
        metrics = PrometheusConfig(bind_address=f"{metrics_host}:{metrics_port}", durations_as_seconds=True)
    filter_ = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    telemetry = TelemetryConfig(logging=LoggingConfig(filter=filter_), metrics=metrics,
                                global_tags={"service": "itsm-worker"} if metrics else {})
    try:
        runtime = Runtime(telemetry=telemetry)
    except Exception as err:  # e.g. the port is taken
        raise TelemetryError(f"--metrics-port {metrics_port}: {str(err).splitlines()[0]}") from None
    Runtime.set_default(runtime, error_if_already_set=False)
    _configured = True


def tracing_interceptors(enabled: bool) -> list:
    """OpenTelemetry spans for every workflow, activity, update and signal (temporalio's
    TracingInterceptor), exported over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT. Needs the
    `otel` extra: `pip install 'itsmflow[otel]'`."""
    if not enabled:
        return []
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:
        raise TelemetryError("--otel needs the OpenTelemetry SDK: pip install 'itsmflow[otel]'") from None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                               "itsm-worker")}))
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise TelemetryError("--otel needs the OTLP exporter: pip install 'itsmflow[otel]'") from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    return [TracingInterceptor(always_create_workflow_spans=True)]  # CLI calls carry no parent span
