"""Every recorded history under tests/histories/ must replay against today's workflow
code: a change that would break running processes fails here, before it ships."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from worker.main import build_replayer

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_histories_are_recorded():
    names = {path.stem for path in HISTORIES}
    assert {"change-low-risk-closed", "change-rejected-at-cab", "change-approval-timed-out",
            "incident-p2-ack-hold-resolve-autoclose", "incident-reassigned-major-escalated",
            "request-laptop-request", "request-laptop-item", "request-laptop-task",
            "request-vpn-approved-expired-item", "request-db-read-canceled-item",
            "problem-suggested-known-error-fixed-problem", "problem-suggested-known-error-fixed-change",
            "problem-suggested-known-error-fixed-incident-with-known-error", "problem-by-hand-canceled",
            "release-no-go", "release-failed", "baseline-incident-p2-ack-hold-resolve-autoclose",
            "local-incident-p2-ack-hold-resolve-autoclose", "local-incident-notice-retried"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
@pytest.mark.parametrize("sandbox_all", [False, True], ids=["as-deployed", "in-sandbox"])
async def test_history_replays(path: Path, sandbox_all: bool):
    """As the worker runs it (the built-ins outside the sandbox) and with every process in the
    SDK's sandbox, whose restrictions then apply to the built-in workflow modules too."""
    replayer = build_replayer(sandbox_all)
    result = await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))
    assert result.replay_failure is None
