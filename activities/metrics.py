"""itsm's own counters, next to the SDK's worker metrics on the Prometheus endpoint
(`itsm worker --metrics-port`)."""

from __future__ import annotations

from temporalio import activity


def count(name: str, description: str, **labels: str) -> None:
    """Add one to the counter `itsm_<name>` from inside an activity; a no-op outside one
    (tests calling activity methods directly)."""
    try:
        meter = activity.metric_meter()
    except RuntimeError:
        return
    meter.create_counter(f"itsm_{name}", description).add(1, labels)
