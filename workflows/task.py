"""A manual fulfillment task (TASK-…): assigned to a group, completed or failed by a
member through a validated update; canceled by its item."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.base import ProcessWorkflow, refuse, refuse_state
    from workflows.request_models import ManualTaskInput, ManualTaskResult, TaskActionInput, TaskState


@workflow.defn
class ManualTaskWorkflow(ProcessWorkflow):
    @workflow.init
    def __init__(self, task: ManualTaskInput) -> None:
        self._init_base()
        self._task = task
        self._result = ManualTaskResult(id=task.id, state=TaskState.OPEN, title=task.title, group=task.group,
                                        item_id=task.item_id)

    @workflow.run
    async def run(self, task: ManualTaskInput) -> ManualTaskResult:
        self.publish_status()
        await self.notify("assigned", "task_assigned", [task.group])
        await self.wait(lambda: self._result.state != TaskState.OPEN, None, f"{task.group} to do the task")
        self.set_search_state(self._result.state.value)
        self.finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    @workflow.query
    def status(self) -> ManualTaskResult:
        return self._result

    def pending_actions(self) -> list[dict]:
        if self._result.state != TaskState.OPEN:
            return []
        return [{"action": name, "groups": [self._task.group], "users": []} for name in ("complete", "fail")]

    def _organisation(self):
        return self._task.organisation

    def _template_folder(self) -> str:
        return "request"

    def _notify_context(self) -> dict:
        return {"task": self._task.model_dump(mode="json", exclude={"organisation"})}

    async def _close(self, action: TaskActionInput, state: TaskState) -> ManualTaskResult:
        self._validate(action)
        self._result.state, self._result.by, self._result.notes = state, action.actor, action.notes
        await self.until_settled()
        return self._result

    @workflow.update
    async def complete(self, action: TaskActionInput) -> ManualTaskResult:
        return await self._close(action, TaskState.DONE)

    @complete.validator
    def _validate_complete(self, action: TaskActionInput) -> None:
        self._validate(action)

    @workflow.update
    async def fail(self, action: TaskActionInput) -> ManualTaskResult:
        return await self._close(action, TaskState.FAILED)

    @fail.validator
    def _validate_fail(self, action: TaskActionInput) -> None:
        self._validate(action)
        if not action.notes.strip():
            refuse("failing a task needs --notes saying why")

    def _validate(self, action: TaskActionInput) -> None:
        org = self._task.organisation
        if org.person(action.actor) is None:
            refuse(f"unknown user {action.actor!r}")
        if self._result.state != TaskState.OPEN:
            refuse_state(f"{self._task.id} is {self._result.state.value}")
        if action.actor not in org.members(self._task.group):
            refuse(f"{action.actor} is not in group {self._task.group!r}")

    @workflow.signal
    def cancel(self, reason: str) -> None:
        if self._result.state == TaskState.OPEN:
            self._result.state, self._result.notes = TaskState.CANCELED, reason
