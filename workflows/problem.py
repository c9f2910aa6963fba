"""The problem process: new → investigating → known_error → resolved → closed (or
canceled). Opened by hand or suggested when incidents recur on one CI; links its
incidents, records the root cause and a known error (kept in the CMDB, shown on every new
incident on the CI), and is resolved by hand or by a successful change raised for it."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import KnownError, ProblemClaimInput, ProblemEndInput, RecordKnownErrorInput
    from workflows.base import CMDB_OPTIONS, ProcessWorkflow, SettleUpdate
    from workflows.incident_models import Event, append_event
    from workflows.problem_models import FINAL_STATES, SYSTEM, ChangeClosed, ProblemInput, ProblemState, ProblemStatus
    from workflows.problem_updates import ProblemUpdates


@workflow.defn
class ProblemWorkflow(ProblemUpdates, SettleUpdate, ProcessWorkflow):
    @workflow.init
    def __init__(self, problem: ProblemInput) -> None:
        self._init_base()
        self._problem = problem
        self._org, self._policy = problem.organisation, problem.policy
        self._actions: list[tuple] = []
        self._dirty = False
        self._published_state = ProblemState.NEW
        # A resolved problem has retired its known error already: closing it ends nothing
        # more (runs started before recorded a second, empty problem_ended).
        self._end_once = workflow.patched("problem-end-once")
        self._s = ProblemStatus(
            id=problem.id, title=problem.title, description=problem.description, ci=problem.ci,
            opened_by=problem.opened_by or SYSTEM, opened_at=workflow.now(), suggested=problem.opened_by is None,
            policy=f"{problem.policy.name}@{problem.policy.version}",
        )

    # --- main loop ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, problem: ProblemInput) -> ProblemStatus:
        self.publish_status()
        if self._s.suggested:
            how = (f"suggested: {len(problem.incidents)} incidents on {problem.ci} within "
                   f"{self.spell(self._policy.suggest_window)}")
        else:
            how = f"on {problem.ci}"
        self._event(self._s.opened_by, "opened", how)
        self._actions.append(("claim",))
        for incident_id in problem.incidents:
            self._link(self._s.opened_by, incident_id)
        self._actions.append(("notify", "opened", "problem_opened",
                              [self._policy.manager_group, *([problem.opened_by] if problem.opened_by else [])], {}))
        while True:
            self._dirty = False
            await self._drain()
            self._publish()
            if self._s.state in FINAL_STATES and not self._actions:
                break
            await self.wait(lambda: self._dirty or bool(self._actions), None, "problem work")
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _drain(self) -> None:
        dispatch = {"notify": self.notify, "claim": self._do_claim, "tell": self._do_tell,
                    "known_error": self._do_known_error, "end": self._do_end}
        while self._actions:
            kind, *args = self._actions.pop(0)
            await dispatch[kind](*args)

    async def _do_claim(self) -> None:
        holder: str = await workflow.execute_activity(
            "claim_problem_ci", ProblemClaimInput(problem_id=self._s.id, ci=self._s.ci, claimed_at=self._s.opened_at),
            result_type=str, summary=f"claim {self._s.ci} for new incidents", **CMDB_OPTIONS)
        if holder != self._s.id:
            self._notices.append(f"{holder} is the open problem of {self._s.ci}: its new incidents link there")

    async def _do_tell(self, incident_id: str) -> None:
        """Tell the incident it belongs to this problem (a closed incident cannot be told)."""
        try:
            await workflow.get_external_workflow_handle(incident_id).signal("problem_linked", self._s.id)
        except Exception:
            self._notices.append(f"{incident_id} could not be told of this problem (closed or unknown)")

    async def _do_known_error(self) -> None:
        record = RecordKnownErrorInput(
            known_error=KnownError(problem_id=self._s.id, ci=self._s.ci, title=self._s.title,
                                   root_cause=self._s.root_cause, workaround=self._s.workaround),
            revision=self._s.known_error_revision, recorded_at=workflow.now(),
        )
        await workflow.execute_activity("record_known_error", record, summary=f"record the known error on "
                                        f"{self._s.ci} in the CMDB", **CMDB_OPTIONS)

    async def _do_end(self) -> None:
        await workflow.execute_activity(
            "problem_ended", ProblemEndInput(problem_id=self._s.id, state=self._s.state.value, ended_at=workflow.now()),
            summary=f"retire the known error and release {self._s.ci}", **CMDB_OPTIONS)

    # --- state helpers -----------------------------------------------------------------------

    def _event(self, actor: str, action: str, details: str = "") -> None:
        append_event(self._s, Event(time=workflow.now(), actor=actor, action=action, details=details))

    def _link(self, actor: str, incident_id: str, tell: bool = True) -> None:
        """`tell`: signal the incident (one linked by its own opening check knows already)."""
        self._s.incidents.append(incident_id)
        self._event(actor, "linked", incident_id)
        if tell:
            self._actions.append(("tell", incident_id))

    def _publish(self) -> None:
        if self._s.state != self._published_state:
            self._published_state = self._s.state
            self.set_search_state(self._s.state.value)

    def _team(self) -> list[str]:
        """Who notices about this problem go to, and who works it: managers and the CI's owners."""
        item = self._org.ci(self._s.ci)
        return list(dict.fromkeys([self._policy.manager_group, *([item.owner_group] if item else [])]))

    def pending_actions(self) -> list[dict]:
        names = {ProblemState.NEW: ["investigate", "cancel"], ProblemState.INVESTIGATING: ["root-cause", "known-error",
                 "resolve", "cancel"], ProblemState.KNOWN_ERROR: ["resolve", "cancel"],
                 ProblemState.RESOLVED: ["close"]}.get(self._s.state, [])
        return [{"action": name, "groups": self._team(), "users": []} for name in names]

    def _organisation(self):
        return self._org

    def _template_folder(self) -> str:
        return "problem"

    def _notify_context(self) -> dict:
        return {"problem": self._s.model_dump(mode="json", exclude={"events"})}

    @workflow.query
    def status(self) -> ProblemStatus:
        status = self._s.model_copy(deep=True)
        status.notices = [*self._s.notices, *self._notices]
        return status

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
