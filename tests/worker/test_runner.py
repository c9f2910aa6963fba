"""Which runner runs which process (worker/runner.py): the built-in processes outside the SDK's
sandbox, an installed package's process inside it, and every process inside it under
ITSM_SANDBOX=all."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.workflow import _Definition

from worker.main import workflow_classes
from worker.runner import ProcessRunner


def definitions() -> dict[str, _Definition]:
    return {cls.__name__: _Definition.must_from_class(cls) for cls in workflow_classes()}


def test_the_built_ins_run_unsandboxed_and_a_packages_process_in_the_sandbox(monkeypatch):
    monkeypatch.delenv("ITSM_SANDBOX", raising=False)
    runner, found = ProcessRunner(), definitions()
    built_in = {name for name, defn in found.items() if defn.cls.__module__.startswith("workflows.")}
    assert {"IncidentWorkflow", "ChangeWorkflow", "ReleaseWorkflow"} <= built_in
    assert not any(runner.sandboxed(found[name]) for name in built_in)
    assert runner.sandboxed(found["AccessRecertificationWorkflow"])  # examples/access-review, installed
    assert isinstance(runner._runner(found["AccessRecertificationWorkflow"]), SandboxedWorkflowRunner)


def test_itsm_sandbox_all_puts_every_process_in_the_sandbox(monkeypatch):
    monkeypatch.setenv("ITSM_SANDBOX", "all")
    runner = ProcessRunner()
    assert all(runner.sandboxed(defn) for defn in definitions().values())
    # and the built-in workflow modules are then imported afresh per run, not shared
    assert "workflows" not in runner._sandboxed.restrictions.passthrough_modules
