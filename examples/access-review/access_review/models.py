"""The access review's boundaries: its start input, the `attest` action's argument, and the
status a run keeps (what `itsm process show` reads, also from the memo without a worker)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from itsmflow.definitions import Duration, Organisation, Title, format_duration
from itsmflow.workflow import Event

REASON_KEPT = 500  # characters of an attestation's reason the run keeps (the history holds all of it)


class Decision(StrEnum):
    KEEP = "keep"
    REVOKE = "revoke"


class ReviewState(StrEnum):
    ATTESTING = "attesting"
    ESCALATED = "escalated"  # the deadline passed with attestations missing: the late managers' managers know
    CLOSED = "closed"  # every grant attested
    INCOMPLETE = "incomplete"  # closed with grants nobody attested


FINAL_STATES = frozenset({ReviewState.CLOSED, ReviewState.INCOMPLETE})


class AccessReviewInput(BaseModel):
    """A review of the grants in force when it starts. `owner` starts it and answers for it;
    `owner_group` (a group of the organisation), when given, attests the grants of people with
    no manager and hears of late attestations whose manager has none above them (else the
    owner does). Managers attest within `attest_within`; then the late ones' managers are told
    and the review closes `grace` later. `names` limits it to grants of these resources (`vpn`,
    a database); at most `limit` grants, the oldest, are reviewed."""

    id: str
    title: Title
    owner: str
    owner_group: str | None = None
    attest_within: Duration = timedelta(days=7)
    grace: Duration = timedelta(days=3)
    names: list[str] = []
    limit: int = Field(default=500, ge=1, le=2000)
    organisation: Organisation

    @model_validator(mode="after")
    def _known(self) -> AccessReviewInput:
        if self.organisation.person(self.owner) is None:
            raise ValueError(f"owner: unknown user {self.owner!r}")
        if self.owner_group is not None and self.organisation.group(self.owner_group) is None:
            raise ValueError(f"owner_group: unknown group {self.owner_group!r}")
        for name, duration in (("attest_within", self.attest_within), ("grace", self.grace)):
            if not timedelta(minutes=1) <= duration <= timedelta(days=90):
                raise ValueError(f"{name}: {format_duration(duration)} is out of range 1m-90d")
        return self


class Attestation(BaseModel):
    """Keep or revoke one grant, by its key (`RITM-…:grant`, as the notification lists it)."""

    actor: str
    grant: str
    decision: Decision
    reason: str = ""


class GrantReview(BaseModel):
    """One grant under review: what the CMDB records, who attests it (a username, or a group
    for someone with no manager), and what was decided."""

    key: str
    grantee: str
    name: str
    detail: str = ""
    item_id: str = ""
    granted_at: datetime
    attester: str
    decision: Decision | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""
    revoked_at: datetime | None = None  # when the CMDB revoked it (None: kept, pending, or no longer in force)

    @property
    def label(self) -> str:
        return f"{self.grantee}: {self.name}" + (f" ({self.detail})" if self.detail else "")


class AccessReviewStatus(BaseModel):
    """`kept`, `revoked` and (once closed) `unattested` are the closing report, by grant key."""

    id: str
    title: str
    state: ReviewState = ReviewState.ATTESTING
    owner: str
    owner_group: str | None = None
    opened_at: datetime
    due_at: datetime
    closes_at: datetime
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    grants: list[GrantReview] = []
    kept: list[str] = []
    revoked: list[str] = []
    unattested: list[str] = []
    events: list[Event] = []
    events_omitted: int = 0
    notices: list[str] = []

    def pending(self) -> list[GrantReview]:
        return [grant for grant in self.grants if grant.decision is None]


def show_review(status: AccessReviewStatus) -> str:
    """What `itsm process show ARV-…` prints."""
    moment = "{:%Y-%m-%d %H:%M}Z".format
    lines = [f"{status.id}  {status.title}", f"  state      {status.state.value}", f"  owner      {status.owner}"
             + (f" ({status.owner_group})" if status.owner_group else ""),
             f"  due        {moment(status.due_at)}, closes {moment(status.closes_at)}",
             f"  grants     {len(status.grants)}: {len(status.kept)} kept, {len(status.revoked)} revoked, "
             f"{len(status.pending())} {'unattested' if status.state in FINAL_STATES else 'pending'}"]
    for grant in status.grants:
        decided = f"{grant.decision.value} by {grant.decided_by}" if grant.decision else f"waits for {grant.attester}"
        lines.append(f"    {grant.key:<26} {grant.label:<28} {decided}")
    if status.events:
        lines.append("  timeline")
        lines += [f"    {moment(e.time)}  {e.actor:<7} {e.action:<11} {e.details}" for e in status.events]
    lines += [f"  notice     {notice}" for notice in status.notices]
    return "\n".join(lines)
