"""Every update's size is bounded, whoever sends it: each text it carries (a note, a reason, a
comment, a workaround) is at most 32 KB, checked in the update validator, so a longer one is
refused before it reaches history or the run's state (the CLI refuses it first, exit 2)."""

from __future__ import annotations

from typing import Any, Iterator

from pydantic import BaseModel

from definitions.text import text_problem
from itsmflow.errors import REFUSED


def texts(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) of every string in an update argument; definitions are the
    worker's own to check (ITSM_AUTH), not people's text."""
    from definitions.base import Definition

    if isinstance(value, str):
        yield path or "argument", value
    elif isinstance(value, Definition):
        return
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from texts(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from texts(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from texts(item, path)


def update_refusal(args) -> str | None:
    for field, text in texts(list(args)):
        problem = text_problem(field, text)
        if problem:
            return problem
    return None


def bounds_interceptor():
    from temporalio.exceptions import ApplicationError
    from temporalio.worker import Interceptor, WorkflowInboundInterceptor

    class Inbound(WorkflowInboundInterceptor):
        def handle_update_validator(self, input) -> None:
            refusal = update_refusal(input.args)
            if refusal:
                raise ApplicationError(refusal, type=REFUSED, non_retryable=True)
            super().handle_update_validator(input)

    class BoundsInterceptor(Interceptor):
        def workflow_interceptor_class(self, input):
            return Inbound

    return BoundsInterceptor()
