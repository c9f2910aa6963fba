"""What the incident workflow's mixins (updates, problems) use, declared once so each
states its contract and mypy checks it; IncidentWorkflow provides it all."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.incident import IncidentPolicy
    from definitions.org import Organisation
    from workflows import escalation
    from workflows.base import ProcessWorkflow
    from workflows.incident_models import IncidentState, IncidentStatus
    from workflows.side_effects import SideEffect


class IncidentBase(ProcessWorkflow):
    _status: IncidentStatus
    _policy: IncidentPolicy
    _org: Organisation
    _engine: escalation.Engine
    _actions: list[SideEffect]  # queued for the main loop
    _dirty: bool  # the main loop has something to look at

    def _event(self, actor: str, action: str, details: str = "") -> None:
        raise NotImplementedError

    def _check(self, actor: str, action: str, states: set[IncidentState], roles: tuple[str, ...]) -> None:
        """Refuse (before history) an unknown actor, a wrong state or missing roles."""
        raise NotImplementedError

    def _set_targets(self) -> None:
        """The SLA clocks' targets for the current priority."""
        raise NotImplementedError

    async def _settle(self) -> IncidentStatus:
        """Wake the main loop and return the status once it has settled."""
        raise NotImplementedError
