"""CMDB activities: the change calendar (conflicts, reservations), change and incident
records, known errors of problems. Every write is idempotent, keyed by the record's id
(+ CI), so a retried activity never doubles."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from activities.db import Database, utc_text
from activities.models import (
    Conflict,
    ConflictQuery,
    ProblemClaimInput,
    ProblemEndInput,
    RecordChangeInput,
    RecordChangeResult,
    RecordIncidentInput,
    RecordKnownErrorInput,
    ReleaseInput,
    ReserveInput,
)
from definitions.org import Organisation


def seed(db: Database, org: Organisation) -> None:
    """Upsert the organisation's CMDB seed (services, CIs, relationships)."""
    with db.transaction() as cur:
        for service in org.services:
            cur.execute(
                "INSERT INTO cmdb_service (name, owner_group) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner_group = excluded.owner_group",
                (service.name, service.owner_group),
            )
        for ci in org.cis:
            cur.execute(
                "INSERT INTO cmdb_ci (name, ci_class, criticality, owner_group) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET ci_class = excluded.ci_class, "
                "criticality = excluded.criticality, owner_group = excluded.owner_group",
                (ci.name, ci.ci_class, ci.criticality.value, ci.owner_group),
            )
            for service_name in ci.services:
                cur.execute(
                    "INSERT INTO cmdb_ci_service (ci, service) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (ci.name, service_name),
                )


def _overlapping(cur, query: ConflictQuery) -> list[Conflict]:
    marks = ", ".join("?" for _ in query.cis)
    others = ", ".join("?" for _ in (query.change_id, *query.ignore))
    rows = cur.all(
        f"SELECT change_id, ci, start_at, end_at FROM change_calendar WHERE state = 'scheduled' "
        f"AND change_id NOT IN ({others}) AND ci IN ({marks}) AND start_at < ? AND end_at > ? "
        f"ORDER BY start_at, change_id",
        (query.change_id, *query.ignore, *query.cis, utc_text(query.end), utc_text(query.start)),
    )
    return [
        Conflict(change_id=r[0], ci=r[1], start=datetime.fromisoformat(r[2]), end=datetime.fromisoformat(r[3]))
        for r in rows
    ]


class CmdbActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="find_conflicts")
    def find_conflicts(self, query: ConflictQuery) -> list[Conflict]:
        """Other reserved changes on the same CIs whose windows overlap."""
        with self.db.transaction() as cur:
            return _overlapping(cur, query)

    @activity.defn(name="reserve_calendar")
    def reserve_calendar(self, reservation: ReserveInput) -> list[Conflict]:
        """Book the CIs; with `exclusive`, refuse (and return the conflicts) when another
        scheduled change overlaps — checked and booked in one transaction."""
        with self.db.transaction() as cur:
            if reservation.exclusive:
                if self.db.kind == "postgres":
                    cur.execute("LOCK TABLE change_calendar IN SHARE ROW EXCLUSIVE MODE")
                conflicts = _overlapping(cur, ConflictQuery(**reservation.model_dump(exclude={"exclusive"})))
                if conflicts:
                    return conflicts
            for ci in reservation.cis:
                cur.execute(
                    "INSERT INTO change_calendar (change_id, ci, start_at, end_at, state) "
                    "VALUES (?, ?, ?, ?, 'scheduled') "
                    "ON CONFLICT (change_id, ci) DO UPDATE SET start_at = excluded.start_at, "
                    "end_at = excluded.end_at, state = 'scheduled'",
                    (reservation.change_id, ci, utc_text(reservation.start), utc_text(reservation.end)),
                )
        return []

    @activity.defn(name="release_calendar")
    def release_calendar(self, release: ReleaseInput) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE change_calendar SET state = ? WHERE change_id = ?", (release.state, release.change_id))

    @activity.defn(name="record_change")
    def record_change(self, record: RecordChangeInput) -> RecordChangeResult:
        written = 0
        with self.db.transaction() as cur:
            for ci in record.cis:
                written += cur.execute(
                    "INSERT INTO change_record (change_id, ci, outcome, title, closed_at, idempotency_key) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (change_id, ci) DO NOTHING",
                    (record.change_id, ci, record.outcome, record.title, utc_text(record.closed_at), record.key),
                )
        return RecordChangeResult(written=written, already_present=len(record.cis) - written)

    @activity.defn(name="record_incident")
    def record_incident(self, record: RecordIncidentInput) -> bool:
        """One row per resolution (the key carries the resolution number); False if already there."""
        with self.db.transaction() as cur:
            return bool(cur.execute(
                "INSERT INTO incident_record "
                "(idempotency_key, incident_id, ci, priority, resolution_code, resolved_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (record.key, record.incident_id, record.ci, record.priority, record.code, utc_text(record.resolved_at)),
            ))

    @activity.defn(name="impacted_services")
    def impacted_services(self, ci: str) -> list[str]:
        """Services that depend on the CI (CMDB relationships)."""
        with self.db.transaction() as cur:
            return [row[0] for row in cur.all("SELECT service FROM cmdb_ci_service WHERE ci = ? ORDER BY service",
                                              (ci,))]

    @activity.defn(name="record_known_error")
    def record_known_error(self, record: RecordKnownErrorInput) -> bool:
        """Upsert the problem's known error; an older revision (a late retry) never wins."""
        known = record.known_error
        with self.db.transaction() as cur:
            return bool(cur.execute(
                "INSERT INTO known_error (problem_id, ci, title, root_cause, workaround, revision, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (problem_id, ci) DO UPDATE SET title = excluded.title, "
                "root_cause = excluded.root_cause, workaround = excluded.workaround, revision = excluded.revision, "
                "recorded_at = excluded.recorded_at WHERE known_error.revision < excluded.revision",
                (known.problem_id, known.ci, known.title, known.root_cause, known.workaround, record.revision,
                 utc_text(record.recorded_at)),
            ))

    @activity.defn(name="claim_problem_ci")
    def claim_problem_ci(self, claim: ProblemClaimInput) -> str:
        """Make the problem the CI's open problem unless one already is; returns the holder."""
        with self.db.transaction() as cur:
            cur.serialize(f"incident_occurrence:{claim.ci}")  # as incident_on_ci's count-and-claim
            cur.execute("INSERT INTO problem_open (ci, problem_id, claimed_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (ci) DO NOTHING", (claim.ci, claim.problem_id, utc_text(claim.claimed_at)))
            return cur.value("SELECT problem_id FROM problem_open WHERE ci = ?", (claim.ci,))

    @activity.defn(name="problem_ended")
    def problem_ended(self, end: ProblemEndInput) -> None:
        """Retire the problem's known errors and release its CI for a new problem."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE known_error SET retired_at = ? WHERE problem_id = ? AND retired_at IS NULL",
                        (utc_text(end.ended_at), end.problem_id))
            cur.execute("DELETE FROM problem_open WHERE problem_id = ?", (end.problem_id,))
