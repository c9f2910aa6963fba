"""Release management for every front end: plan a release (its new changes, the existing
ones that join it, the DAG, the window and its approval chain), act on it, read it.

Planning checks everything it can before anything starts (each change exists, can join,
fits the window; the DAG names members and has no cycle). Then the release starts (and
starts the changes created with it), and each existing change joins it by its own
`join_release` update; if one refuses after all (it moved on meanwhile), the release is
called off again (a no-go that cancels what it started) and the refusal is the error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.client import Client

from definitions import registry
from definitions.approvals import ApprovalChain
from definitions.change import ChangePolicy, ChangeType, Risk
from definitions.org import Organisation
from definitions.text import title_problem
from itsmflow.app import ops
from itsmflow.app.change_submit import SubmitError, build_change
from itsmflow.app.ids import new_id
from workflows.change_models import JOINABLE_STATES, ChangeInput, ChangeStatus
from workflows.release_models import JoinReleaseInput, ReleaseInput, ReleaseStatus, order


class PlanError(ValueError):
    """A one-line reason the release is refused (exit 2, nothing started)."""


@dataclass(frozen=True)
class NewChange:
    """A change created with the release: `label` names it in the DAG before it has an id."""

    label: str
    title: str
    cis: list[str]


def start_attributes(release: ReleaseInput) -> dict:
    return {"ItsmProcess": "release", "ItsmState": "planning", "ItsmRequester": release.requested_by,
            "ItsmGroup": release.approval.levels[0].group,
            "ItsmRisk": "high" if len(release.approval.levels) > 1 else None}


def approval_chain(policy: ChangePolicy, riskiest: Risk) -> ApprovalChain:
    """The release manager's level (the policy's first level for low risk), plus the CAB (the
    last level of the high-risk chain) when the riskiest change is high."""
    manager = policy.approvals[Risk.LOW].levels[0].model_copy(update={"name": "release-manager"})
    cab = policy.approvals[Risk.HIGH].levels[-1]
    return ApprovalChain(levels=[manager, cab] if riskiest == Risk.HIGH and cab.group != manager.group else [manager])


def plan(*, title: str, start: datetime, end: datetime, requested_by: str, manager: str, now: datetime,
         existing: list[ChangeStatus], new: list[NewChange], after: dict[str, list[str]],
         policy: ChangePolicy | None = None, description: str = "") -> ReleaseInput:
    """The release input, or PlanError. `existing` are the joining changes as read now;
    `after` maps a change (id or new label) to those that must succeed before it."""
    policy = policy or registry.get(registry.DEFAULT_CHANGE_POLICY, ChangePolicy)
    org = registry.get(policy.organisation, Organisation)
    if problem := title_problem(title):
        raise PlanError(problem)
    for user, option in ((requested_by, "--as"), (manager, "--manager")):
        if org.person(user) is None:
            raise PlanError(f"unknown user {user!r} ({option})")
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise PlanError("the window needs --start before --end, both with a UTC offset")
    if end <= now:
        raise PlanError(f"the window ends in the past ({end.isoformat()})")
    if not existing and not new:
        raise PlanError("a release needs at least one change (--change CHG-… or --new LABEL=TITLE@CI)")
    release_id = new_id("REL", now)
    for change in existing:
        if change.release:
            raise PlanError(f"{change.id} belongs to release {change.release} already (one release at a time)")
        if change.state not in JOINABLE_STATES:
            raise PlanError(f"{change.id} is {change.state.value} and can no longer join a release")
        if change.planned_start < start or change.planned_end > end:
            raise PlanError(f"{change.id} is planned {change.planned_start:%Y-%m-%d %H:%M}Z – "
                            f"{change.planned_end:%Y-%m-%d %H:%M}Z, outside the window")
    labels = [n.label for n in new]
    if len(set(labels)) != len(labels) or set(labels) & {c.id for c in existing}:
        raise PlanError("each --new needs a label of its own")
    created: list[ChangeInput] = []
    ids: dict[str, str] = {}
    for item in new:
        try:
            built = build_change(change_id=new_id("CHG", now), title=item.title, cis=item.cis,
                                  change_type=ChangeType.NORMAL, start=start, end=end, requested_by=requested_by,
                                  now=now, policy=policy, description=f"part of release {release_id}: {title}")
        except SubmitError as err:
            raise PlanError(f"--new {item.label}: {err}") from None
        created.append(built.model_copy(update={"release": release_id}))
        ids[item.label] = built.id
    members = [*(c.id for c in existing), *(c.id for c in created)]
    dag = {ids.get(change, change): [ids.get(before, before) for before in befores]
           for change, befores in after.items()}
    try:
        order(dag, members)
    except ValueError as err:
        raise PlanError(str(err)) from None
    risks = [c.risk for c in existing if c.risk] + [
        policy.assess_risk([ci for name in c.cis if (ci := org.ci(name))], c.outage)[0] for c in created]
    riskiest = Risk.HIGH if Risk.HIGH in risks else Risk.MODERATE if Risk.MODERATE in risks else Risk.LOW
    return ReleaseInput(id=release_id, title=title, description=description, requested_by=requested_by,
                        manager=manager, window_start=start, window_end=end, changes=members, created=created,
                        cis=list(dict.fromkeys([*(ci for c in existing for ci in c.cis),
                                                *(ci for c in created for ci in c.cis)])),
                        after=dag, approval=approval_chain(policy, riskiest), organisation=org)


async def read_changes(client: Client, change_ids: list[str], rpc_timeout: timedelta | None = None
                       ) -> list[ChangeStatus]:
    from itsmflow.app.change_ops import status

    found = []
    for change_id in change_ids:
        try:
            found.append(await status(client, change_id, rpc_timeout))
        except Exception as err:  # noqa: BLE001 (any reason it cannot be read refuses the plan)
            raise PlanError(f"{change_id} cannot be read: {err}") from None
    return found


async def create(client: Client, release: ReleaseInput, task_queue: str, rpc_timeout: timedelta | None = None
                 ) -> ReleaseStatus:
    """Start the release, then have each existing change join it (see the module's note)."""
    from temporalio.client import WorkflowUpdateFailedError

    from itsmflow.app.change_ops import update as change_update

    await ops.start_fresh(client, "ReleaseWorkflow", release, "REL", task_queue=task_queue,
                                   attributes=start_attributes, result_type=ReleaseStatus, rpc_timeout=rpc_timeout,
                                   fresh_ids=False)
    created = {c.id for c in release.created}
    for change_id in (c for c in release.changes if c not in created):
        join = JoinReleaseInput(actor=release.requested_by, release_id=release.id,
                                window_start=release.window_start, window_end=release.window_end)
        try:
            await change_update(client, change_id, "join_release", join, rpc_timeout)
        except WorkflowUpdateFailedError as err:
            reason = getattr(err.cause, "message", str(err.cause))
            from workflows.models import ReasonInput

            await update(client, release.id, "cancel", ReasonInput(actor=release.requested_by,
                                                                   reason=f"{change_id} could not join: {reason}"),
                         rpc_timeout)
            raise PlanError(f"{change_id} could not join {release.id}: {reason}") from None
    return await read(client, release.id, rpc_timeout)


async def read(client: Client, release_id: str, rpc_timeout: timedelta | None = None) -> ReleaseStatus:
    return await ops.status(client, release_id, ReleaseStatus, rpc_timeout)


async def update(client: Client, release_id: str, name: str, arg, rpc_timeout: timedelta | None = None
                 ) -> ReleaseStatus:
    return await ops.update(client, release_id, name, arg, ReleaseStatus, rpc_timeout)
