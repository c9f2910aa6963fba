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
