"""The lint and type gates (issue 16): ruff and mypy, pinned in the dev extra, with the rules
pyproject states, find nothing (ruff in the packages, tests, bench and examples; mypy in the
packages)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    assert ruff.exists(), "ruff is missing from the venv: `make install` installs the dev extra"
    done = subprocess.run([str(ruff), "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-1000:]


def test_mypy_finds_nothing():
    """mypy with pyproject's [tool.mypy] rules over the packages it names (its cache in
    .mypy_cache keeps a rerun to about a second)."""
    assert importlib.util.find_spec("mypy"), "mypy is missing from the venv: `make install` installs the dev extra"
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-pretty"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-1000:]


SLIPS = """import os
import random
import time
import uuid
from datetime import datetime


def step():
    time.sleep(1)
    return datetime.now(), random.random(), uuid.uuid4(), os.environ
"""


def test_workflow_code_may_not_call_the_clock_randomness_or_the_environment():
    """The built-in processes run outside the SDK's sandbox (worker/runner.py): ruff's banned
    APIs are their guard. A module under workflows/ that reads the clock, randomness, uuid4
    or the environment is refused; the same module elsewhere is not."""
    ruff = Path(sys.executable).parent / "ruff"

    def check(name: str) -> str:
        done = subprocess.run([str(ruff), "check", "--no-cache", "--output-format", "concise", "--select", "TID251",
                               "--stdin-filename", str(ROOT / name), "-"], input=SLIPS, capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
        return done.stdout

    found = check("workflows/slips.py")
    for banned in ("`os`", "`random`", "`time`", "`datetime.datetime.now`", "`uuid.uuid4`"):
        assert f"{banned} is banned" in found, found
    assert "banned" not in check("activities/slips.py")


def test_workflow_code_opens_no_files():
    """`open` is a builtin, out of ruff's banned APIs' reach: no module under workflows/ calls
    it (or input, eval, exec, print)."""
    import ast

    builtins = {"open", "input", "eval", "exec", "print", "breakpoint"}
    found = [f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}()"
             for path in sorted((ROOT / "workflows").rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in builtins]
    assert not found, found
