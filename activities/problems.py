"""The `incident_on_ci` activity: an incident opened on a CI learns the CI's known errors,
and recurring incidents open (or join) the CI's problem. The activity records and decides;
the incident workflow starts the suggested problem (or tells the open one) itself, with the
kit's `open_or_attach` (runs started before that left it to this activity, which still can).

One CMDB transaction records the occurrence and decides; only then is Temporal told.
The decision is idempotent: an occurrence is keyed by incident id, the CI's open problem
is one row (`problem_open`), and a suggested problem's id is derived from the incident
that claimed it, so a retried activity starts nothing twice (an already started
problem is fine) and a later incident joins the problem instead of opening another."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from temporalio import activity

from activities.db import Database, utc_text
from activities.models import IncidentOnCiInput, IncidentOnCiResult, KnownError, StaleProblemInput
from definitions.problem import ProblemPolicy

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def epoch():
    from datetime import timezone

    return datetime(1970, 1, 1, tzinfo=timezone.utc)


def suggested_id(incident_id: str, opened_at: datetime) -> str:
    """PRB-YYYYMMDD-XXXX, the same every time for the incident that made the CI's count."""
    digest = int.from_bytes(hashlib.sha256(incident_id.encode()).digest()[:8], "big")
    suffix = "".join(_ALPHABET[(digest // 36 ** i) % 36] for i in range(4))
    return f"PRB-{utc_text(opened_at)[:10].replace('-', '')}-{suffix}"


def known_errors(cur, ci: str) -> list[KnownError]:
    rows = cur.all("SELECT problem_id, ci, title, root_cause, workaround FROM known_error "
                   "WHERE ci = ? AND retired_at IS NULL ORDER BY recorded_at, problem_id", (ci,))
    return [KnownError(problem_id=r[0], ci=r[1], title=r[2], root_cause=r[3], workaround=r[4]) for r in rows]


@dataclass
class ProblemDecision:
    """What an incident on a CI means for the CI's problem. `start_with`: start the
    suggested problem with these incidents; `tell`: signal the CI's open problem of this
    incident."""

    result: IncidentOnCiResult
    start_with: list[str] = field(default_factory=list)
    tell: bool = False


class ProblemActivities:
    """Needs a Temporal client (to start or signal problems) and the problem policy whose
    threshold and window apply; both injected by the worker."""

    def __init__(self, db: Database, client, policy: ProblemPolicy) -> None:
        self.db, self.client, self.policy = db, client, policy

    @activity.defn(name="incident_on_ci")
    async def incident_on_ci(self, occurrence: IncidentOnCiInput) -> IncidentOnCiResult:
        if occurrence.decide_only:  # the incident workflow starts or tells the problem itself
            decision = await asyncio.to_thread(self._decide, occurrence)
            result = decision.result
            result.start_with, result.tell = decision.start_with, decision.tell
            if decision.start_with:
                result.problem_policy = self.policy
                result.problem_organisation = self._organisation()
            return result
        for _ in range(2):  # runs started before the workflow did it: start or tell from here
            decision = await asyncio.to_thread(self._decide, occurrence)
            problem_id = decision.result.problem_id
            if problem_id is None:  # under the threshold: no problem to start or tell
                return decision.result
            if decision.start_with:
                await self._start(problem_id, occurrence, decision.start_with)
            elif decision.tell and not await self._signal(problem_id, occurrence.incident_id):
                await asyncio.to_thread(self._release_stale, occurrence, problem_id)
                continue
            return decision.result
        return decision.result

    def _decide(self, occurrence: IncidentOnCiInput) -> ProblemDecision:
        ci, incident_id = occurrence.ci, occurrence.incident_id
        with self.db.transaction() as cur:
            # Count and claim as one step per CI: incidents racing on several workers must not
            # each count only themselves (Postgres would let them; SQLite serializes anyway).
            cur.serialize(f"incident_occurrence:{ci}")
            cur.execute("INSERT INTO incident_occurrence (incident_id, ci, opened_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (incident_id) DO NOTHING", (incident_id, ci, utc_text(occurrence.opened_at)))
            result = IncidentOnCiResult(known_errors=known_errors(cur, ci))
            claim = cur.one("SELECT problem_id, claimed_by FROM problem_open WHERE ci = ?", (ci,))
            if claim is None:
                since = utc_text(occurrence.opened_at - self.policy.suggest_window)
                recent = [r[0] for r in cur.all(
                    "SELECT incident_id FROM incident_occurrence WHERE ci = ? AND problem_id IS NULL "
                    "AND opened_at > ? AND opened_at <= ?", (ci, since, utc_text(occurrence.opened_at)))]
                result.recent = len(recent)
                if len(recent) < self.policy.suggest_after:
                    return ProblemDecision(result)
                claim = (suggested_id(incident_id, occurrence.opened_at), incident_id)
                cur.execute("INSERT INTO problem_open (ci, problem_id, claimed_by, claimed_at) VALUES (?, ?, ?, ?)",
                            (ci, claim[0], incident_id, utc_text(occurrence.opened_at)))
                marks = ", ".join("?" for _ in recent)
                cur.execute(f"UPDATE incident_occurrence SET problem_id = ? WHERE incident_id IN ({marks})",
                            (claim[0], *recent))
            result.problem_id, result.suggested = claim[0], claim[1] == incident_id
            if not result.suggested:
                cur.execute("UPDATE incident_occurrence SET problem_id = ? WHERE incident_id = ?", (claim[0],
                                                                                                    incident_id))
                linked = cur.value("SELECT COUNT(*) FROM incident_occurrence WHERE problem_id = ?", (claim[0],))
                return ProblemDecision(result, tell=linked <= self.policy.link_limit)
            linked = [r[0] for r in cur.all("SELECT incident_id FROM incident_occurrence WHERE problem_id = ? "
                                            "ORDER BY opened_at, incident_id", (claim[0],))]
            result.recent = max(result.recent, len(linked))
            return ProblemDecision(result, start_with=linked)

    async def _start(self, problem_id: str, occurrence: IncidentOnCiInput, incidents: list[str]) -> None:
        from temporalio.common import WorkflowIDReusePolicy
        from temporalio.exceptions import WorkflowAlreadyStartedError

        from definitions import registry
        from definitions.org import Organisation
        from workflows.problem_models import ProblemInput, start_attributes
        from workflows.search_attributes import typed

        problem = ProblemInput(
            id=problem_id, title=f"Recurring incidents on {occurrence.ci}", ci=occurrence.ci, incidents=incidents,
            description=f"{len(incidents)} incidents on {occurrence.ci} within {self.policy.suggest_window}: "
                        f"{', '.join(incidents)}",
            policy=self.policy, organisation=registry.get(self.policy.organisation, Organisation),
        )
        try:
            await self.client.start_workflow(
                "ProblemWorkflow", problem, id=problem_id, task_queue=activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, memo={"title": problem.title},
                search_attributes=typed(start_attributes(problem)),
            )
        except WorkflowAlreadyStartedError:
            activity.logger.info("problem %s already started (activity retried)", problem_id)

    async def _signal(self, problem_id: str, incident_id: str) -> bool:
        """Tell the CI's open problem of another incident; False if that run has ended."""
        from temporalio.service import RPCError, RPCStatusCode

        from workflows.problem_models import IncidentOccurred

        try:
            await self.client.get_workflow_handle(problem_id).signal(
                "incident_occurred", IncidentOccurred(incident_id=incident_id))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return False
        return True

    @activity.defn(name="release_stale_problem")
    def release_stale_problem(self, stale: StaleProblemInput) -> None:
        """The incident workflow found the CI's problem ended (its signal failed): free the CI."""
        self._release_stale(IncidentOnCiInput(incident_id=stale.incident_id, ci=stale.ci, opened_at=epoch()),
                            stale.problem_id)

    def _organisation(self):
        from definitions import registry
        from definitions.org import Organisation

        return registry.get(self.policy.organisation, Organisation)

    def _release_stale(self, occurrence: IncidentOnCiInput, problem_id: str) -> None:
        """The CI's problem run ended without releasing it (terminated): free the CI and the
        occurrence, then decide again."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM problem_open WHERE ci = ? AND problem_id = ?", (occurrence.ci, problem_id))
            cur.execute("UPDATE incident_occurrence SET problem_id = NULL WHERE incident_id = ?",
                        (occurrence.incident_id,))
