"""Which runner runs which process's workflows.

The built-in processes (classes in modules under `workflows.`) run outside the SDK's sandbox;
every other process (an installed package's) runs inside it. The sandbox costs each run a
fresh import of its workflow module and each activation and payload a trip through its
importer: about a fifth of the worker's CPU per incident, measured (bench/throughput.py), for
code that keeps its own rules: no module state, determinism checked statically (the banned
calls in pyproject's ruff settings, tests/test_quality.py) and by the replay gate, which also
replays every recorded history in the sandbox. A process owner's code keeps the sandbox's
checks, since nobody has vouched for it.

`ITSM_SANDBOX=all` puts the built-ins back in the sandbox too (say, to look for a suspected
determinism slip with the SDK's restrictions on)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import _Definition

# Modules every sandboxed run shares instead of importing them again: the libraries and our
# own modules a process package builds on (the kit, the definitions, the workflow base
# classes). They keep no module state.
LIBRARIES = ("pydantic", "pydantic_core", "annotated_types", "definitions", "activities", "itsmflow", "jinja2",
             "cryptography", "opentelemetry")
PASSTHROUGH = (*LIBRARIES, "workflows")
# Under ITSM_SANDBOX=all, each built-in run imports its own workflow module afresh, so the
# sandbox's restrictions apply to it (the pure escalation and SLA modules are shared).
SANDBOX_ALL_PASSTHROUGH = (*LIBRARIES, "workflows.escalation", "workflows.sla")
# Whose workflow classes run unsandboxed (module name prefixes).
TRUSTED = ("workflows.",)
SANDBOX_ALL = "all"


def sandboxed_runner(passthrough: tuple[str, ...] = PASSTHROUGH) -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough))


class ProcessRunner(WorkflowRunner):
    """Runs a trusted module's workflows unsandboxed and all others in the sandbox."""

    def __init__(self, sandbox_all: bool | None = None) -> None:
        if sandbox_all is None:
            sandbox_all = os.environ.get("ITSM_SANDBOX", "").strip().lower() == SANDBOX_ALL
        self.sandbox_all = sandbox_all
        self._sandboxed = sandboxed_runner(SANDBOX_ALL_PASSTHROUGH if sandbox_all else PASSTHROUGH)
        self._unsandboxed = UnsandboxedWorkflowRunner()

    def sandboxed(self, defn: _Definition) -> bool:
        return self.sandbox_all or not defn.cls.__module__.startswith(TRUSTED)

    def _runner(self, defn: _Definition) -> WorkflowRunner:
        return self._sandboxed if self.sandboxed(defn) else self._unsandboxed

    def prepare_workflow(self, defn: _Definition) -> None:
        self._runner(defn).prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return self._runner(det.defn).create_instance(det)

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self._sandboxed.set_worker_level_failure_exception_types(types)
        self._unsandboxed.set_worker_level_failure_exception_types(types)
