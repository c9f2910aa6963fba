"""Validation of a new incident, before anything starts. Pure: no Temporal, no I/O."""

from __future__ import annotations

from definitions import registry
from definitions.incident import IncidentPolicy
from definitions.org import Organisation
from definitions.text import title_problem
from itsmflow.app.ids import new_id
from workflows.incident_models import IncidentInput


class SubmitError(ValueError):
    """A one-line reason the incident is refused (exit 2, nothing started)."""


def check_title_and_user(org: Organisation, title: str, user: str) -> None:
    problem = title_problem(title)
    if problem:
        raise SubmitError(problem)
    if org.person(user) is None:
        raise SubmitError(f"unknown user {user!r} (set --as or ITSM_USER)")


def build_incident(*, title: str, impact: int, urgency: int, opened_by: str, ci: str | None = None,
                   group: str | None = None, dedup_key: str | None = None, description: str = "",
                   policy_name: str = "acme-incident", incident_id: str | None = None) -> IncidentInput:
    policy = registry.get(policy_name, IncidentPolicy)
    org = registry.get(policy.organisation, Organisation)
    check_title_and_user(org, title, opened_by)
    for name, value in (("--impact", impact), ("--urgency", urgency)):
        if value not in (1, 2, 3):
            raise SubmitError(f"{name} must be 1, 2 or 3 (got {value})")
    item = org.ci(ci) if ci else None
    if ci and item is None:
        raise SubmitError(f"unknown CI {ci!r} (known: {', '.join(c.name for c in org.cis)})")
    group = group or (item.owner_group if item else policy.default_group)
    if org.group(group) is None:
        raise SubmitError(f"unknown group {group!r}")
    if dedup_key is not None and not dedup_key.strip():
        raise SubmitError("--dedup-key must not be empty")
    return IncidentInput(
        id=incident_id or new_id("INC"), title=title.strip(), description=description, ci=ci, impact=impact,
        urgency=urgency, group=group, opened_by=opened_by, dedup_key=dedup_key, policy=policy, organisation=org,
    )
