"""Validation of a change submission, before anything starts. Pure: no Temporal, no I/O,
so tests and the demo use the same rules as `itsm change submit`."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from definitions import registry
from definitions.change import ChangePolicy, ChangeType, WindowViolation
from definitions.org import Organisation
from definitions.text import title_problem
from definitions.windows import blackout_hit, next_slot, window_for
from workflows.change_models import ChangeInput

PAST_TOLERANCE = timedelta(minutes=5)
PROBLEM_ID = re.compile(r"^PRB-\d{8}-[A-Z0-9]{4}$")


class SubmitError(ValueError):
    """A one-line reason the submission is refused (exit 2, nothing started)."""


def build_change(
    *,
    change_id: str,
    title: str,
    cis: list[str],
    change_type: ChangeType,
    start: datetime,
    end: datetime,
    requested_by: str,
    now: datetime,
    template: str | None = None,
    outage: bool = False,
    description: str = "",
    policy: ChangePolicy | None = None,
    problem: str | None = None,
) -> ChangeInput:
    policy = policy or registry.get(registry.DEFAULT_CHANGE_POLICY, ChangePolicy)
    org = registry.get(policy.organisation, Organisation)
    refusal = title_problem(title)  # not `problem`: that names the problem this change fixes
    if refusal:
        raise SubmitError(refusal)
    if org.person(requested_by) is None:
        raise SubmitError(f"unknown user {requested_by!r} (set --as or ITSM_USER)")
    if not cis:
        raise SubmitError("at least one --ci is required")
    unknown = [ci for ci in cis if org.ci(ci) is None]
    if unknown:
        raise SubmitError(f"unknown CI {', '.join(map(repr, unknown))} (known: {', '.join(c.name for c in org.cis)})")
    cis = list(dict.fromkeys(cis))
    if problem is not None and not PROBLEM_ID.match(problem):
        raise SubmitError(f"--problem {problem!r} is not a problem id (PRB-YYYYMMDD-XXXX)")
    if start.tzinfo is None or end.tzinfo is None:
        raise SubmitError("--start and --end need a UTC offset, e.g. 2026-11-24T22:00+00:00")
    if end <= start:
        raise SubmitError(f"--end {end.isoformat()} must be after --start {start.isoformat()}")
    if start < now - PAST_TOLERANCE and change_type != ChangeType.EMERGENCY:
        raise SubmitError(f"--start {start.isoformat()} is in the past")
    notes: list[str] = []
    if change_type == ChangeType.STANDARD:
        start, end = _check_standard(policy, template, cis, start, end)
    elif template:
        raise SubmitError("--template is only for --type standard")
    elif end - start > policy.max_duration:
        raise SubmitError(f"the change lasts {end - start}, longer than the policy maximum {policy.max_duration}")
    if change_type == ChangeType.NORMAL:
        start, end, notes = _check_window(policy, start, end, now)
    return ChangeInput(
        id=change_id, title=title.strip(), description=description, change_type=change_type, template=template,
        cis=cis, planned_start=start, planned_end=end, outage=outage, requested_by=requested_by,
        policy=policy, organisation=org, submit_notes=notes, problem=problem,
    )


def _check_standard(policy: ChangePolicy, template_name: str | None, cis: list[str], start: datetime, end: datetime):
    if not template_name:
        raise SubmitError("--type standard needs --template (one of: "
                          f"{', '.join(t.name for t in policy.templates) or 'none defined'})")
    template = policy.template(template_name)
    if template is None:
        raise SubmitError(f"unknown template {template_name!r} (known: {', '.join(t.name for t in policy.templates)})")
    outside = [ci for ci in cis if template.cis and ci not in template.cis]
    if outside:
        raise SubmitError(f"template {template.name!r} does not cover CI {', '.join(outside)}")
    if end - start > template.max_duration:
        raise SubmitError(f"template {template.name!r} allows at most {template.max_duration}")
    window = policy.window(template.window) if template.window != "any" else None
    if window and not window.contains(start, end):
        raise SubmitError(f"template {template.name!r} runs only in window {window.name!r}")
    return start, end


def _check_window(policy: ChangePolicy, start: datetime, end: datetime, now: datetime):
    """Normal changes must fit one maintenance window and avoid blackouts: refused at
    submit, or moved to the next slot, as the policy's `outside_window` says."""
    window = window_for(policy.windows, start, end)
    blackout = blackout_hit(policy.blackouts, start, end)
    if window and not blackout:
        return start, end, []
    problem = (
        f"overlaps blackout {blackout.name!r} ({blackout.start.isoformat()} to {blackout.end.isoformat()})"
        if blackout
        else f"is outside every maintenance window ({', '.join(w.name for w in policy.windows)})"
    )
    slot = next_slot(policy.windows, policy.blackouts, max(start, now), end - start)
    if policy.outside_window == WindowViolation.REJECT or slot is None:
        hint = f"; next possible start: {slot.isoformat()}" if slot else "; no slot in the next 90 days"
        raise SubmitError(f"planned time {start.isoformat()} to {end.isoformat()} {problem}{hint}")
    moved_end = slot + (end - start)
    return slot, moved_end, [f"planned time {problem}; moved to {slot.isoformat()} per policy {policy.name}"]
