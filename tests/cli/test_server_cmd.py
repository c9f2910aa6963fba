"""`itsm server` keeps its pid file in ITSM_HOME whatever `--db` says (issue 14), so
`server status|stop --port` find a server started on a database elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys

from worker.server import DevServer, free_port


def itsm(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_a_server_on_a_db_elsewhere_is_found_by_its_port(tmp_path):
    port, home = free_port(), tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ITSM_", "TEMPORAL_"))} | {"ITSM_HOME": str(home)}
    db = tmp_path / "elsewhere" / "temporal.db"
    try:
        started = itsm(env, "server", "start", "--detach", "--port", str(port), "--db", str(db))
        assert started.returncode == 0, started.stderr
        status = itsm(env, "server", "status", "--port", str(port), "--json")
        assert '"running": true' in status.stdout, status.stdout + status.stderr
        stopped = itsm(env, "server", "stop", "--port", str(port))
        assert stopped.stdout == f"stopped the server on port {port}\n", stopped.stdout + stopped.stderr
        assert db.exists() and (home / f"server-{port}.pid").exists() is False
    finally:
        DevServer(port=port, db=db, state_dir=home).stop()
