"""Loading processes (issue 15): a process that fails to load, or one that claims another's
prefix, is one line naming it; the worker then refuses to start (every process or none),
while `itsm process list` shows what did load and exits 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def itsm(processes: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ITSM_PROCESSES": processes, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_a_process_that_fails_to_load_is_one_line_and_the_worker_refuses_to_start():
    broken = "no.such.module:REVIEW"
    listed = itsm(broken, "process", "list")
    assert listed.returncode == 2 and re.search(r"^change +CHG +approve", listed.stdout, re.M)
    assert listed.stderr == (f"itsm: ITSM_PROCESSES {broken!r}: cannot load: ModuleNotFoundError: No module named "
                             "'no'\n")
    worker = itsm(broken, "worker")
    assert (worker.returncode, worker.stdout) == (2, "")
    assert worker.stderr == (f"itsm: the worker runs every process or none: ITSM_PROCESSES {broken!r}: cannot load: "
                             "ModuleNotFoundError: No module named 'no'\n")


def test_a_clash_names_both_processes_and_a_bad_declaration_names_itself():
    listed = itsm("tests.kit.clashing:SAME_PREFIX,tests.kit.clashing:BAD_PREFIX,tests.kit.clashing:NOT_A_PROCESS",
                  "process", "list")
    assert listed.returncode == 2
    assert listed.stderr.splitlines() == [
        "itsm: process 'audit-review' (ITSM_PROCESSES 'tests.kit.clashing:SAME_PREFIX'): prefix 'CHG' is already "
        "process 'change''s",
        "itsm: process 'odd': prefix 'Odd1' must be 2-5 capital letters",
        "itsm: ITSM_PROCESSES 'tests.kit.clashing:NOT_A_PROCESS': dict is not an itsmflow Process",
    ]
    unknown = itsm("", "runs", "list", "--process", "audit-review")
    assert unknown.returncode == 2 and "unknown process 'audit-review' (known: change, incident" in unknown.stderr
