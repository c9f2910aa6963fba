"""Side effects a workflow queues for its main loop, as typed objects. Update handlers
change state synchronously and queue these; the main loop runs each through its
workflow's handler table (`{Notify: self._do_notify, ...}`), so nothing is dispatched by
string or by parsing keys.

`lane`: effects in different lanes are independent and may run concurrently (the opened
notice and the first page; the CMDB record and the resolved notice); within a lane (the
escalation steps, the SLA notices) they keep their order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

ESCALATION_LANE, SLA_LANE = "escalation", "sla"


@dataclass
class SideEffect:
    @property
    def lane(self) -> str:
        return type(self).__name__


@dataclass
class Notify(SideEffect):
    """One notification, keyed `<workflow id>:<step>` (a retry never sends twice)."""

    step: str
    template: str
    to: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    ordered_in: str | None = None  # a shared lane (ESCALATION_LANE, SLA_LANE); else its own

    @property
    def lane(self) -> str:
        return self.ordered_in or f"notify:{self.step}"


@dataclass
class Webhook(SideEffect):
    """An escalation step's webhook, keyed `<workflow id>:<step>`; ordered with the pages."""

    step: str
    url: str

    @property
    def lane(self) -> str:
        return ESCALATION_LANE


Handlers = Mapping[type, Callable[[Any], Awaitable[None]]]


async def run_in_order(effects: list[SideEffect], handlers: Handlers) -> None:
    """Run queued effects one by one, oldest first, including those queued meanwhile."""
    while effects:
        effect = effects.pop(0)
        await handlers[type(effect)](effect)


async def run_in_lanes(effects: list[SideEffect], handlers: Handlers) -> None:
    """Run queued effects lane by lane concurrently (one round trip, not one each), in order
    within a lane, until none is left (effects may queue more)."""
    while effects:
        lanes: dict[str, list[SideEffect]] = {}
        for effect in effects:
            lanes.setdefault(effect.lane, []).append(effect)
        effects.clear()
        await asyncio.gather(*(_run_lane(lane, handlers) for lane in lanes.values()))


async def _run_lane(lane: list[SideEffect], handlers: Handlers) -> None:
    for effect in lane:
        await handlers[type(effect)](effect)
