"""A failure message means nothing was started (issue 13): a submit that meets a worker that
just stopped (the server lists its poller for minutes) says the run started and waits for a
worker, with its id on stdout; an idempotency key makes repeating it return that same run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

from worker.main import build_worker


def itsm(live, task_queue: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEMPORAL_ADDRESS": live.client.service_client.config.target_host, "ITSM_TIMEOUT": "3",
           "ITSM_TASK_QUEUE": task_queue, "ITSM_CHANGE_POLICY": "acme-demo", "ITSM_USER": "alice"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=60)


async def killed_worker(live, task_queue: str, home) -> None:
    """An `itsm worker` that polled, then died by SIGKILL: the server lists its poller for minutes."""
    from itsmflow.app.ops import pollers

    env = {**os.environ, "TEMPORAL_ADDRESS": live.client.service_client.config.target_host,
           "ITSM_TASK_QUEUE": task_queue, "ITSM_DB_URL": f"sqlite:///{home / 'cmdb.sqlite3'}",
           "ITSM_OUTBOX": str(home / "outbox.jsonl"), "ITSM_HOME": str(home)}
    worker = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if await pollers(live.client, task_queue):
                break
            await asyncio.sleep(0.1)
    finally:
        worker.kill()
        worker.wait()


async def test_a_start_no_worker_takes_up_says_so_and_a_key_returns_the_same_run(live, task_queue, db, channel,
                                                                                 tmp_path):
    await killed_worker(live, task_queue, tmp_path)
    key = f"deploy-{uuid.uuid4()}"
    submit = ("change", "submit", "--title", "Patch web-02", "--ci", "web-02", "--start", "2030-01-01T22:00+00:00",
              "--end", "2030-01-01T23:00+00:00", "--idempotency-key", key)
    first = await asyncio.to_thread(itsm, live, task_queue, *submit)
    change_id = first.stdout.strip()
    assert first.returncode == 1 and change_id.startswith("CHG-"), first.stderr
    assert first.stderr == f"itsm: {change_id} started, waiting for a worker (is `itsm worker` running?)\n"
    again = await asyncio.to_thread(itsm, live, task_queue, *submit)
    assert (again.returncode, again.stdout.strip()) == (1, change_id), again.stderr
    try:
        async with build_worker(live.client, task_queue, db=db, channel=channel):
            answered = await asyncio.to_thread(itsm, live, task_queue, *submit, "--json")
        described = await live.client.get_workflow_handle(change_id).describe()
        # What the Temporal UI lists beside the id.
        assert (await described.static_summary(), await described.static_details()) == (
            "Patch web-02", "change · normal · alice")
    finally:
        await live.client.get_workflow_handle(change_id).terminate("test finished")
    assert answered.returncode == 0, answered.stderr
    assert '"state": "authorize"' in answered.stdout and f'"id": "{change_id}"' in answered.stdout
    runs = [e.id async for e in live.client.list_workflows(f'WorkflowId = "{change_id}"')]
    assert runs == [change_id]  # one run, however often it was submitted
