"""`itsm` reads against the Go CLI on the same runs of the same embedded dev server, in one run,
with a real `itsm worker` polling (so an open run's show is answered as people see it):

    itsm runs show CLOSED-CHG          vs  temporal workflow describe -w CLOSED-CHG
    itsm change show CLOSED-CHG        vs  temporal workflow describe -w CLOSED-CHG   (its result)
    itsm change show OPEN-CHG          vs  temporal workflow describe -w OPEN-CHG     (its memo)
    itsm incident show OPEN-INC        vs  temporal workflow describe -w OPEN-INC     (the query)
    itsm incident|change|runs list     vs  temporal workflow list --query ... --limit 50

Each `itsm` figure is the lean path (cli/fast.py); `full_seconds` is the same command on the
full client path (ITSM_HTTP_ADDRESS refused), for reference.

    .venv/bin/python -m bench.cli_read [--rounds 15]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from worker.server import DevServer, find_binary, free_port, wait_until_ready

RESULTS = Path(__file__).parent / "results"
TARGET = 1.5


def itsm(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    if done.returncode:
        raise RuntimeError(f"itsm {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def runs(env: dict[str, str]) -> dict[str, str]:
    """A closed standard change, a change waiting for approval and an open incident."""
    closed = itsm(env, "change", "submit", "--title", "bench closed", "--ci", "web-01", "--type", "standard",
                  "--template", "restart-web-server", "--start", "now", "--end", "+30m", "--as", "alice")
    wait_for(lambda: json.loads(itsm(env, "change", "show", closed, "--json"))["state"] == "implement",
             "the standard change to start")
    itsm(env, "change", "complete", closed, "--outcome", "successful", "--as", "frank")
    wait_for(lambda: json.loads(itsm(env, "runs", "show", closed, "--json"))["status"] == "completed",
             "the change to close")
    waiting = itsm(env, "change", "submit", "--title", "bench open", "--ci", "web-02", "--start", "+2h",
                   "--end", "+3h", "--as", "alice")
    incident = itsm(env, "incident", "open", "--title", "bench", "--ci", "web-01", "--impact", "3", "--urgency", "3",
                    "--as", "erin")
    wait_for(lambda: incident in itsm(env, "incident", "list") and waiting in itsm(env, "change", "list"),
             "visibility to list the runs")
    return {"closed": closed, "waiting": waiting, "incident": incident}


def timed(command: list[str], env: dict[str, str], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        server = DevServer(port=free_port(), db=Path(folder) / "temporal.db", headless=True, http_port=free_port())
        process = server.spawn(detach=False)
        worker = None
        try:
            import asyncio

            asyncio.run(wait_until_ready(server.address, 60, process))
            env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "ITSM_TASK_QUEUE": f"bench-read-{uuid.uuid4()}",
                   "ITSM_HTTP_ADDRESS": f"http://127.0.0.1:{server.http_port}", "ITSM_CHANGE_POLICY": "acme-demo",
                   "ITSM_DB_URL": f"sqlite:///{folder}/cmdb.sqlite3", "ITSM_OUTBOX": f"{folder}/outbox.jsonl",
                   "ITSM_HOME": folder}
            env.pop("ITSM_SMTP_HOST", None)
            worker = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ids = runs(env)
            full_env = {**env, "ITSM_HTTP_ADDRESS": "http://127.0.0.1:1"}  # refused: the full client path
            lean_itsm = [str(Path(sys.executable).parent / "itsm")]
            go = find_binary()

            def describe(run_id: str) -> list[str]:
                return [go, "workflow", "describe", "-w", run_id, "--address", server.address]

            def go_list(query: str) -> list[str]:
                return [go, "workflow", "list", "--address", server.address, "--limit", "50", "--query", query]

            cases = {
                "runs show (closed change)": (["runs", "show", ids["closed"]], describe(ids["closed"])),
                "change show (closed: result)": (["change", "show", ids["closed"]], describe(ids["closed"])),
                "change show (open: memo)": (["change", "show", ids["waiting"]], describe(ids["waiting"])),
                "incident show (open: query)": (["incident", "show", ids["incident"]], describe(ids["incident"])),
                "incident list": (["incident", "list"], go_list("ItsmProcess = 'incident'")),
                "change list": (["change", "list"], go_list("ItsmProcess = 'change'")),
                "runs list": (["runs", "list"], go_list("ItsmProcess IS NOT NULL")),
            }
            figures: dict[str, dict[str, float]] = {}
            for name, (args, baseline) in cases.items():
                timed(lean_itsm + args, env, 2), timed(baseline, env, 2)  # warm the page cache
                ours, theirs = timed(lean_itsm + args, env, rounds), timed(baseline, env, rounds)
                full = timed(lean_itsm + args, full_env, max(3, rounds // 3))
                figures[name] = {"itsm_seconds": round(ours, 3), "go_seconds": round(theirs, 3),
                                 "ratio": round(ours / theirs, 2), "full_client_seconds": round(full, 3)}
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            server.stop()
    closed = figures["runs show (closed change)"]
    return {"benchmark": "cli_read", "rounds": rounds, "itsm_runs_show_seconds": closed["itsm_seconds"],
            "itsm_runs_show_full_client_seconds": closed["full_client_seconds"],
            "temporal_workflow_describe_seconds": closed["go_seconds"], "ratio": closed["ratio"],
            "commands": figures, "target": f"each ratio <= {TARGET}",
            "met": all(f["ratio"] <= TARGET for f in figures.values())}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    outcome = main(parser.parse_args().rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_read.json").write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps(outcome, indent=2))
    sys.stdout.flush()
    os._exit(0)
