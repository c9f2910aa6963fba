"""The problem process: new → investigating → known_error → resolved → closed (or
canceled). Opened by hand or suggested when incidents recur on one CI; links its
incidents, records the root cause and a known error (kept in the CMDB, shown on every new
incident on the CI), and is resolved by hand or by a successful change raised for it."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cmdb import CmdbActivities
    from activities.models import KnownError, ProblemClaimInput, ProblemEndInput, RecordKnownErrorInput
    from workflows.base import ProcessWorkflow, SettleUpdate
    from workflows.models import Event, append_event
    from workflows.patches import patched
    from workflows.problem_models import (
        FINAL_STATES,
        SYSTEM,
        ChangeClosed,
        ClaimCi,
        EndProblem,
        ProblemInput,
        ProblemState,
        ProblemStatus,
        RecordKnownError,
        TellIncident,
    )
    from workflows.problem_updates import ProblemUpdates
    from workflows.side_effects import Notify, SideEffect, run_in_order


@workflow.defn
class ProblemWorkflow(ProblemUpdates, SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, problem: ProblemInput) -> None:
        self._init_base()
        self._problem = problem
        self._org, self._policy = problem.organisation, problem.policy
        self._actions: list[SideEffect] = []
        self._dirty = False
        self._published_state = ProblemState.NEW
        # A resolved problem has retired its known error already: closing it ends nothing
        # more (runs started before recorded a second, empty problem_ended).
        self._end_once = patched("problem-end-once")
        self._status = ProblemStatus(
            id=problem.id, title=problem.title, description=problem.description, ci=problem.ci,
            opened_by=problem.opened_by or SYSTEM, opened_at=workflow.now(), suggested=problem.opened_by is None,
            policy=f"{problem.policy.name}@{problem.policy.version}",
        )

    # --- main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, problem: ProblemInput) -> ProblemStatus:
        self.publish_status()
        if self._status.suggested:
            how = (f"suggested: {len(problem.incidents)} incidents on {problem.ci} within "
                   f"{self.spell(self._policy.suggest_window)}")
        else:
            how = f"on {problem.ci}"
        self._event(self._status.opened_by, "opened", how)
        self._actions.append(ClaimCi())
        for incident_id in problem.incidents:
            self._link(self._status.opened_by, incident_id)
        self._actions.append(Notify("opened", "problem_opened",
                                    [self._policy.manager_group, *([problem.opened_by] if problem.opened_by else [])]))
        while True:
            self._dirty = False
            await self._drain()
            self._publish()
            if self._status.state in FINAL_STATES and not self._actions:
                break
            await self.wait(lambda: self._dirty or bool(self._actions), None, "problem work")
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _drain(self) -> None:
        await run_in_order(self._actions, {Notify: self.send, ClaimCi: self._do_claim, TellIncident: self._do_tell,
                                           RecordKnownError: self._do_known_error, EndProblem: self._do_end})

    async def _do_claim(self, _: ClaimCi) -> None:
        holder = await self.cmdb(
            CmdbActivities.claim_problem_ci, ProblemClaimInput(problem_id=self._status.id, ci=self._status.ci,
                                                               claimed_at=self._status.opened_at),
            summary=f"claim {self._status.ci} for new incidents")
        if holder != self._status.id:
            self._notices.append(f"{holder} is the open problem of {self._status.ci}: its new incidents link there")

    async def _do_tell(self, tell: TellIncident) -> None:
        incident_id = tell.incident_id
        """Tell the incident it belongs to this problem (a closed incident cannot be told)."""
        try:
            await workflow.get_external_workflow_handle(incident_id).signal("problem_linked", self._status.id)
        except Exception:
            self._notices.append(f"{incident_id} could not be told of this problem (closed or unknown)")

    async def _do_known_error(self, _: RecordKnownError) -> None:
        record = RecordKnownErrorInput(
            known_error=KnownError(problem_id=self._status.id, ci=self._status.ci, title=self._status.title,
                                   root_cause=self._status.root_cause, workaround=self._status.workaround),
            revision=self._status.known_error_revision, recorded_at=workflow.now(),
        )
        await self.cmdb(CmdbActivities.record_known_error, record,
                                               summary=f"record the known error on {self._status.ci} in the CMDB")

    async def _do_end(self, _: EndProblem) -> None:
        await self.cmdb(
            CmdbActivities.problem_ended, ProblemEndInput(problem_id=self._status.id, state=self._status.state.value,
                                                          ended_at=workflow.now()),
            summary=f"retire the known error and release {self._status.ci}")

    # --- state helpers -----------------------------------------------------------------------

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._status, Event(time=workflow.now(), actor=actor, action=action, details=details))

    def _link(self, actor: str, incident_id: str, tell: bool = True) -> None:
        """`tell`: signal the incident (one linked by its own opening check knows already)."""
        self._status.incidents.append(incident_id)
        self._event(actor, "linked", incident_id)
        if tell:
            self._actions.append(TellIncident(incident_id))

    def _publish(self) -> None:
        if self._status.state != self._published_state:
            self._published_state = self._status.state
            self.set_search_state(self._status.state.value)

    def _team(self) -> list[str]:
        """Who notices about this problem go to, and who works it: managers and the CI's owners."""
        item = self._org.ci(self._status.ci)
        return list(dict.fromkeys([self._policy.manager_group, *([item.owner_group] if item else [])]))

    def pending_actions(self) -> list[dict]:
        names = {ProblemState.NEW: ["investigate", "cancel"], ProblemState.INVESTIGATING: ["root-cause", "known-error",
                 "resolve", "cancel"], ProblemState.KNOWN_ERROR: ["resolve", "cancel"],
                 ProblemState.RESOLVED: ["close"]}.get(self._status.state, [])
        return [{"action": name, "groups": self._team(), "users": []} for name in names]

    def _organisation(self):
        return self._org

    def _template_folder(self) -> str:
        return "problem"

    def _notify_context(self) -> dict:
        return {"problem": self._status.model_dump(mode="json", exclude={"events"})}

    @workflow.query
    def status(self) -> ProblemStatus:
        return self._status.model_copy(update={"notices": [*self._status.notices, *self._notices]})

    async def _settle(self) -> ProblemStatus:
        self._dirty = True
        await self.until_settled()
        return self.status()


async def tell_problem(problem_id: str, change_id: str, outcome: str) -> str | None:
    """A change raised for a problem reports how it ended; returns a notice if it could not."""
    try:
        await workflow.get_external_workflow_handle(problem_id).signal(
            "change_closed", ChangeClosed(change_id=change_id, outcome=outcome))
    except Exception:
        return f"problem {problem_id} could not be told the outcome (closed or unknown)"
    return None
