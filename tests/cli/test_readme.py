"""The README's CLI block works word for word (issue 14): it runs here in bash, in a fresh
folder, against the server it starts itself (on a free port named by TEMPORAL_ADDRESS, as
a user would point the CLI at one), with the `itsm` the venv installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from worker.server import DevServer, free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    text = README.read_text()
    marker = text.index("<!-- readme-cli:")
    return re.search(r"```sh\n(.*?)```", text[marker:], re.S).group(1)


def test_the_readme_cli_block_runs_word_for_word(tmp_path):
    port = free_port()
    scripts = Path(sys.executable).parent  # the venv's, where `itsm` is
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ITSM_", "TEMPORAL_"))}
    env |= {"TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "PATH": f"{scripts}{os.pathsep}{env['PATH']}",
            "ITSM_UI_URL": f"http://localhost:{port + 1000}"}
    script = ("set -euo pipefail\n"
              "trap 'kill $(jobs -p) 2>/dev/null; wait; itsm server stop >/dev/null' EXIT\n" + readme_block())
    try:
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=240)
    finally:
        DevServer(port=port, state_dir=tmp_path / ".itsm").stop()
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Temporal dev server on 127.0.0.1:{port}, UI http://localhost:{port + 1000}")
    change_id = next(line for line in lines if re.fullmatch(r"CHG-\d{8}-[A-Z0-9]{4}", line))
    assert f"{change_id} implement" in lines and f"{change_id} closed" in lines, done.stdout
    assert "  state      implement" in lines, done.stdout
    history = done.stdout[done.stdout.index(f"{change_id} closed"):]
    steps = (("alice", "submitted"), ("bob", "approve"), ("erin", "complete"), ("system", "state +closed"),
             ("system", "completed"))
    for actor, step in steps:
        assert re.search(rf"Z  {actor} +{step}", history), history
