"""What an incident learns from problem management (a mixin of IncidentWorkflow): the
known errors of its CI when it opens, and the problem it belongs to."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import IncidentOnCiInput, IncidentOnCiResult
    from workflows.base import CMDB_OPTIONS


class IncidentProblems:
    _checking_ci = False

    async def _do_on_ci(self) -> None:
        """The opened notice waits for the CI's known errors, to show them; the first page
        (another lane) does not."""
        await self._check_ci_problems()
        await self.notify("opened", "incident_opened", [self._s.opened_by])

    async def _check_ci_problems(self) -> None:
        """Record the occurrence on the CI, show its known errors, join (or, when incidents
        recur, open) its problem: one activity."""
        self._checking_ci = True
        try:
            found: IncidentOnCiResult = await workflow.execute_activity(
                "incident_on_ci", IncidentOnCiInput(incident_id=self._s.id, ci=self._s.ci, opened_at=self._s.opened_at),
                result_type=IncidentOnCiResult, summary=f"known errors and open problem of {self._s.ci}",
                **CMDB_OPTIONS)
        finally:
            self._checking_ci = False
        self._s.known_errors = found.known_errors
        for known in found.known_errors:
            self._event("system", "known error", f"{known.problem_id}: {known.workaround}")
        if found.problem_id and found.suggested:
            self._set_problem(found.problem_id, f"suggested {found.problem_id}: {found.recent} incidents on "
                                                f"{self._s.ci} within the problem policy's window")
        elif found.problem_id:
            self._set_problem(found.problem_id, f"linked to {found.problem_id}, the open problem of {self._s.ci}")

    @workflow.signal
    def problem_linked(self, problem_id: str) -> None:
        """From the problem workflow; while the opening check runs, its answer says it."""
        if problem_id != self._s.problem and not self._checking_ci:
            self._set_problem(problem_id, f"linked to {problem_id}")
            self._dirty = True

    def _set_problem(self, problem_id: str, details: str) -> None:
        self._s.problem = problem_id
        self._event("system", "problem", details)
