"""worker/converter.py: the same payloads as temporalio's pydantic converter, built on first use."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, pydantic_data_converter
from temporalio.converter import WorkflowSerializationContext

from worker.connect import data_converter as connected
from worker.converter import LazyPydanticPayloadConverter, data_converter
from workflows.incident_models import IncidentInput, IncidentStatus
from workflows.models import ActorInput

VALUES = [None, "text", 3, 2.5, True, b"\x00bytes", {"a": [1, "b", None]}, [1, 2],
          datetime(2026, 12, 4, 5, 6, 7, tzinfo=timezone.utc), timedelta(minutes=90),
          ActorInput(actor="frank", note="on it")]


def test_payloads_are_byte_for_byte_those_of_the_stock_converter():
    ours, stock = data_converter().payload_converter, pydantic_data_converter.payload_converter
    assert ours.to_payloads(VALUES) == stock.to_payloads(VALUES)
    payloads = stock.to_payloads(VALUES)
    hints = [type(value) if value is not None else None for value in VALUES]
    assert ours.from_payloads(payloads, hints) == stock.from_payloads(payloads, hints)


def test_models_round_trip_with_their_types():
    from itsmflow.app.incident_submit import build_incident

    converter = data_converter().payload_converter
    incident = build_incident(title="disk full", ci="web-01", impact=2, urgency=2, opened_by="erin")
    [payload] = converter.to_payloads([incident])
    assert converter.from_payloads([payload], [IncidentInput]) == [incident]
    with pytest.raises(ValidationError):
        converter.from_payloads([payload], [IncidentStatus])


def test_nothing_is_built_until_used():
    """The SDK builds a data converter per activation's codec pass and never uses its payload
    converter: that one must cost no encoding converters (with the stock class each holds a
    new JSON converter, so this fails on it)."""
    built = dataclasses.replace(data_converter()).payload_converter  # the SDK's per-activation clone
    assert "converters" not in vars(getattr(built, "_inner_payload_converter", built))
    fresh = LazyPydanticPayloadConverter()
    assert "converters" not in vars(fresh)
    fresh.to_payloads(["x"])
    assert any(isinstance(c, PydanticJSONPlainPayloadConverter) for c in vars(fresh)["converters"].values())
    with pytest.raises(AttributeError):
        _ = fresh.no_such_attribute


def test_context_and_codec_are_kept():
    context = WorkflowSerializationContext(namespace="default", workflow_id="INC-1")
    converter = data_converter()
    assert converter.with_context(context).payload_converter.to_payloads(VALUES) == \
        pydantic_data_converter.payload_converter.to_payloads(VALUES)
    assert connected().payload_converter_class is LazyPydanticPayloadConverter
