"""Activity boundary models. Every side effect carries an idempotency key built from
the workflow id and the step, so a retried activity never writes or sends twice."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from definitions.org import Organisation
from definitions.problem import ProblemPolicy


class Recipient(BaseModel):
    username: str
    email: str


class NotifyInput(BaseModel):
    key: str
    template: str
    recipients: list[Recipient]
    context: dict
    # When the run asked for it, on the run's clock (a fake one under time skipping, where a
    # local activity's own times are the worker's wall clock). None from runs started before.
    decided_at: datetime | None = None


class NotifyResult(BaseModel):
    key: str
    channel: str
    message_id: str
    duplicate: bool = False
    recipients: int = 0


class ConflictQuery(BaseModel):
    change_id: str
    cis: list[str]
    start: datetime
    end: datetime
    ignore: list[str] = []  # bookings that are not conflicts: a change's own release, a release's changes


class Conflict(BaseModel):
    change_id: str
    ci: str
    start: datetime
    end: datetime


class ReserveInput(BaseModel):
    """`exclusive`: reserve only if no other scheduled change overlaps on these CIs (the
    check and the booking are one transaction); the conflicts are returned otherwise."""

    change_id: str
    cis: list[str]
    start: datetime
    end: datetime
    exclusive: bool = False
    ignore: list[str] = []


class ReleaseInput(BaseModel):
    change_id: str
    state: str


class RecordChangeInput(BaseModel):
    key: str
    change_id: str
    cis: list[str]
    outcome: str
    title: str
    closed_at: datetime


class RecordIncidentInput(BaseModel):
    key: str
    incident_id: str
    ci: str
    priority: str
    code: str
    resolved_at: datetime


class RecordChangeResult(BaseModel):
    written: int
    already_present: int


class WebhookInput(BaseModel):
    key: str
    url: str
    payload: dict


class WebhookResult(BaseModel):
    key: str
    status: int
    duplicate: bool = False


class ActionInput(BaseModel):
    """An automated fulfillment action; `key` = item id + task name."""

    key: str
    action: str
    item_id: str
    requested_for: str
    variables: dict


class ActionResult(BaseModel):
    key: str
    action: str
    resource: str
    already_done: bool = False


class KnownError(BaseModel):
    """A problem's known error: shown on every new incident on its CI until the problem ends."""

    problem_id: str
    ci: str
    title: str
    root_cause: str = ""
    workaround: str


class RecordKnownErrorInput(BaseModel):
    """`revision` grows with each workaround a problem records: a retried older write never
    overwrites a newer one."""

    known_error: KnownError
    revision: int
    recorded_at: datetime


class IncidentOnCiInput(BaseModel):
    """`decide_only`: record and decide, and leave starting or telling the problem to the
    incident workflow (runs started before it did so left it to the activity)."""

    incident_id: str
    ci: str
    opened_at: datetime
    decide_only: bool = False


class IncidentOnCiResult(BaseModel):
    """`problem_id`: the open problem of the CI the incident was linked to (`suggested`: this
    incident made the count reach the policy's threshold and the problem was opened for it)."""

    known_errors: list[KnownError] = []
    problem_id: str | None = None
    suggested: bool = False
    recent: int = 1
    # With `decide_only`: the incidents to start the suggested problem with (and the policy and
    # organisation it runs on), or `tell`: signal the CI's open problem of this incident.
    start_with: list[str] = []
    problem_policy: ProblemPolicy | None = None
    problem_organisation: Organisation | None = None
    tell: bool = False


class StaleProblemInput(BaseModel):
    """The CI's problem run ended without releasing the CI: free it, and the occurrence."""

    incident_id: str
    ci: str
    problem_id: str


class ProblemClaimInput(BaseModel):
    problem_id: str
    ci: str
    claimed_at: datetime


class ProblemEndInput(BaseModel):
    """The problem left the open states: its known errors retire, its CI claim is released."""

    problem_id: str
    state: str
    ended_at: datetime


# The fulfillment actions that grant access (activities/fulfillment.py): what an access review covers.
GRANT_ACTIONS = ("grant_vpn", "grant_db")


class GrantQuery(BaseModel):
    """The grants still in force (not revoked, not expired), oldest first: those recorded by
    `as_of` (to the second; say, when a review starts), by the fulfillment actions in `actions`,
    to `grantees` and of the resources in `names` when given. At most `limit` are returned."""

    as_of: datetime | None = None
    actions: list[str] = list(GRANT_ACTIONS)
    grantees: list[str] = []
    names: list[str] = []
    limit: int = Field(default=500, ge=1, le=10_000)


class Grant(BaseModel):
    """One grant the CMDB records: `key` is its fulfillment record's (item id + task), `name`
    what was granted (`vpn`, a database) and `detail` how (`30 days`, `read`)."""

    key: str
    grantee: str
    name: str
    detail: str = ""
    action: str
    item_id: str
    granted_at: datetime


class RevokeInput(BaseModel):
    """Revoke one grant. `key` is the revocation's idempotency key (workflow id + step): a retry
    answers what the first attempt did and changes nothing."""

    key: str
    grant_key: str
    revoked_by: str
    reason: str = ""
