"""What an incident learns from problem management (a mixin of IncidentWorkflow): the
known errors of its CI when it opens, and the problem it belongs to."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import IncidentOnCiInput, IncidentOnCiResult, StaleProblemInput
    from activities.problems import ProblemActivities
    from workflows.base import open_or_attach
    from workflows.incident_base import IncidentBase
    from workflows.incident_models import LookUpCi
    from workflows.problem import ProblemWorkflow
    from workflows.problem_models import IncidentOccurred, ProblemInput, start_attributes
    from workflows.search_attributes import typed


class IncidentProblems(IncidentBase):
    _checking_ci = False
    _own_problems = False  # decided at the start (`problem-from-workflow`)

    async def _do_on_ci(self, _: LookUpCi) -> None:
        """The opened notice waits for the CI's known errors, to show them; the first page
        (another lane) does not."""
        await self._check_ci_problems()
        await self.notify("opened", "incident_opened", [self._status.opened_by])

    async def _check_ci_problems(self) -> None:
        assert self._status.ci is not None  # only an incident on a CI checks it
        """Record the occurrence on the CI, show its known errors, join (or, when incidents
        recur, open) its problem. The activity decides; the workflow starts the suggested
        problem, or tells the open one, itself (runs started before `problem-from-workflow`
        left that to the activity)."""
        self._checking_ci = True
        try:
            for _ in range(2):
                found = await self.cmdb(
                    ProblemActivities.incident_on_ci, IncidentOnCiInput(incident_id=self._status.id, ci=self._status.ci,
                                                        opened_at=self._status.opened_at,
                                                        decide_only=self._own_problems),
                    summary=f"known errors and open problem of {self._status.ci}")
                if found.start_with:
                    await self._open_problem(found)
                elif found.tell and found.problem_id and not await self._tell_problem(found.problem_id):
                    await self.cmdb(
                        ProblemActivities.release_stale_problem, StaleProblemInput(incident_id=self._status.id,
                                                                                   ci=self._status.ci,
                                                                   problem_id=found.problem_id),
                        summary=f"release {self._status.ci} from ended problem {found.problem_id}")
                    continue
                break
        finally:
            self._checking_ci = False
        self._status.known_errors = found.known_errors
        for known in found.known_errors:
            self._event("system", "known error", f"{known.problem_id}: {known.workaround}")
        if found.problem_id and found.suggested:
            self._set_problem(found.problem_id, f"suggested {found.problem_id}: {found.recent} incidents on "
                                                f"{self._status.ci} within the problem policy's window")
        elif found.problem_id:
            self._set_problem(found.problem_id, f"linked to {found.problem_id}, the open problem of {self._status.ci}")

    async def _open_problem(self, found: IncidentOnCiResult) -> None:
        """The suggested problem, started by this incident and outliving it."""
        ci, incidents = self._status.ci, found.start_with
        # decide_only names the problem, its policy and organisation whenever it says start_with
        assert ci and found.problem_id and found.problem_policy and found.problem_organisation
        window = self.spell(found.problem_policy.suggest_window)
        problem = ProblemInput(
            id=found.problem_id, title=f"Recurring incidents on {ci}", ci=ci, incidents=incidents,
            description=f"{len(incidents)} incidents on {ci} within {window}: {', '.join(incidents)}",
            policy=found.problem_policy, organisation=found.problem_organisation)
        await open_or_attach(ProblemWorkflow.run, problem, id=problem.id, memo={"title": problem.title},
                             search_attributes=typed(start_attributes(problem)), summary=problem.title)

    async def _tell_problem(self, problem_id: str) -> bool:
        """Tell the CI's open problem of this incident; False when that run has ended."""
        try:
            await workflow.get_external_workflow_handle(problem_id).signal(
                ProblemWorkflow.incident_occurred, IncidentOccurred(incident_id=self._status.id))
        except ApplicationError:
            return False
        return True

    @workflow.signal
    def problem_linked(self, problem_id: str) -> None:
        """From the problem workflow; while the opening check runs, its answer says it."""
        if problem_id != self._status.problem and not self._checking_ci:
            self._set_problem(problem_id, f"linked to {problem_id}")
            self._dirty = True

    def _set_problem(self, problem_id: str, details: str) -> None:
        self._status.problem = problem_id
        self._event("system", "problem", details)
