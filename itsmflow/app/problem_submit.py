"""Validation of a new problem, before anything starts. Pure: no Temporal, no I/O."""

from __future__ import annotations

from definitions import registry
from definitions.org import Organisation
from definitions.problem import ProblemPolicy
from itsmflow.app.ids import new_id
from itsmflow.app.incident_submit import SubmitError, check_title_and_user
from workflows.problem_models import INCIDENT_ID, ProblemInput


def build_problem(*, title: str, ci: str, opened_by: str, incidents: list[str] | tuple[str, ...] = (),
                  description: str = "", policy_name: str = registry.DEFAULT_PROBLEM_POLICY,
                  problem_id: str | None = None) -> ProblemInput:
    policy = registry.get(policy_name, ProblemPolicy)
    org = registry.get(policy.organisation, Organisation)
    check_title_and_user(org, title, opened_by)
    if org.ci(ci) is None:
        raise SubmitError(f"unknown CI {ci!r} (known: {', '.join(c.name for c in org.cis)})")
    malformed = [i for i in incidents if not INCIDENT_ID.match(i)]
    if malformed:
        raise SubmitError(f"--incident {malformed[0]!r} is not an incident id (INC-YYYYMMDD-XXXX)")
    return ProblemInput(
        id=problem_id or new_id("PRB"), title=title.strip(), description=description, ci=ci,
        incidents=list(dict.fromkeys(incidents)), opened_by=opened_by, policy=policy, organisation=org,
    )
