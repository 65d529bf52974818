"""Pipelines on loopback, started through the real CLI: for benchmarks and tests.

`LocalPipeline` runs `wellmon run` as a child process group on free ports,
waits for the dashboard URL it prints, and stops everything on exit. `Child`
starts one `wellmon` subcommand (a node, a dashboard, a capture) in its own
process group and waits for its READY line, for harnesses that start the
processes one by one.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wellmon.streamer.lifecycle import READY_PREFIX
from wellmon.supervisor import DASHBOARD_LINE

URL_PATTERN = re.compile(re.escape(DASHBOARD_LINE) + r"(http://\S+?)\?code=(\S+)")
"""The viewer's sign-in link that `wellmon run` prints: the dashboard's base URL and a code."""
CHILD_READY = re.compile(r"\s+(\S+)\s+pid (\d+)\s+ready")
"""The status line `wellmon run` prints when a child is ready: its name and process id."""


def bearer(token: str) -> dict[str, str]:
    """The header a program (not a browser) shows the dashboard its role's token with."""
    return {"Authorization": f"Bearer {token}"}


def open_dashboard_ws(url: str, token: str, **options: Any) -> Any:
    """A WebSocket to the dashboard at ``url`` (ws://…/ws or …/ws/kiosk), signed in with
    ``token``; no size limit on what it receives."""
    from websockets.sync.client import connect

    return connect(url, additional_headers=bearer(token), max_size=None,
                   **{"open_timeout": 10, **options})


def get_json(url: str, token: str, *, method: str = "GET", timeout: float = 10,
             headers: dict[str, str] | None = None) -> Any:
    """The JSON body of a dashboard API answer, the request signed in with ``token``."""
    import urllib.request

    request = urllib.request.Request(url, method=method, headers={**bearer(token),
                                                                  **(headers or {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def free_tcp_port() -> int:
    """A port that was free a moment ago (bind port 0 and read it back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback_env(token: str, state_dir: Path) -> dict[str, str]:
    """Settings that put every socket of one pipeline on free loopback ports."""
    return {
        "WELLMON_NODE_INPUT": f"tcp://127.0.0.1:{free_tcp_port()}",
        "WELLMON_NODE_OUTPUT": f"tcp://127.0.0.1:{free_tcp_port()}",
        "WELLMON_DASHBOARD_PORT": "0",
        "WELLMON_DASHBOARD_TOKEN_FILE": str(state_dir / "token"),
        "WELLMON_DASHBOARD_KIOSK_TOKEN_FILE": str(state_dir / "kiosk-token"),
        "WELLMON_DASHBOARD_ADMIN_TOKEN_FILE": str(state_dir / "admin-token"),
        "WELLMON_DASHBOARD_STORE": str(state_dir / "checks.db"),
        "WELLMON_TOKEN": token,
        "WELLMON_RUN_OPEN_BROWSER": "false",
    }


def ws_messages(ws: Any, stop: threading.Event) -> Iterator[tuple[float, dict[str, Any]]]:
    """Each JSON message of a sync WebSocket client with the wall clock at its arrival, until
    `stop` is set (looked at twice a second): the reading loop of the harnesses' clients."""
    while not stop.is_set():
        try:
            raw = ws.recv(timeout=0.5)
        except TimeoutError:
            continue
        yield time.time(), json.loads(raw)


class Child:
    """`python -m wellmon ARGS` in a process group of its own (a Ctrl-C in the terminal, or
    a test's kill of the group, reaches only it), its output read in a thread: the last
    lines are kept for error messages and its READY line is waited for."""

    def __init__(self, name: str, args: list[str], env: dict[str, str],
                 stderr: Any = subprocess.STDOUT, keep_lines: int = 40) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-m", "wellmon", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=stderr,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                     start_new_session=True)
        self.ready_line = ""
        self.output: deque[str] = deque(maxlen=keep_lines)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if not self.ready_line:  # after it, nobody takes from the queue
                self._lines.put(line)

    def wait_ready(self, timeout: float) -> bool:
        """True once the READY line came; False when the process died or time ran out."""
        deadline = time.monotonic() + timeout
        while not self.ready_line:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                line = ""
            if line.startswith(READY_PREFIX):
                self.ready_line = line.strip()
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                return False
        return True


class LocalPipeline:
    """`wellmon run --source SOURCE ARGS` on free loopback ports (``extra_env`` adds settings;
    a None value removes one), started by ``python`` in ``cwd``; entered once the run
    printed the viewer's sign-in link, or, for a run without the dashboard (``--parts``),
    once child ``ready_child`` is ready."""

    def __init__(self, source: str, token: str, state_dir: Path, *, extra_env: dict | None = None,
                 args: tuple[str, ...] = (), start_timeout_s: float = 120.0,
                 python: str = sys.executable, cwd: Path | None = None,
                 ready_child: str | None = None) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **loopback_env(token, state_dir), **(extra_env or {})}
        self.env = {k: v for k, v in env.items() if v is not None}
        self.argv = [python, "-m", "wellmon", "run", "--source", source, *args]
        self.cwd = cwd
        self.ready_child = ready_child
        self.start_timeout_s = start_timeout_s
        self.output: deque[str] = deque(maxlen=2000)
        self.url = ""
        self.token = token
        self.proc: subprocess.Popen | None = None
        self._started = threading.Event()

    def __enter__(self) -> LocalPipeline:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, env=self.env,
                                     cwd=self.cwd, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._started.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("wellmon run did not start:\n" + "\n".join(self.output))
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            match = URL_PATTERN.search(line)
            if match:
                self.url = match.group(1)
            ready = CHILD_READY.match(line)
            if (match and self.ready_child is None) or (
                    ready and ready.group(1) == self.ready_child):
                self._started.set()

    @property
    def ws_url(self) -> str:
        """The live page's WebSocket; open it with ``open_dashboard_ws(url, self.token)``."""
        return self.url.replace("http://", "ws://", 1) + "ws"

    def child_pids(self) -> dict[str, int]:
        """Child process ids by name, from the status lines `wellmon run` printed."""
        pids = {}
        for line in list(self.output):
            match = CHILD_READY.match(line)
            if match:
                pids[match.group(1)] = int(match.group(2))
            match = re.match(r"\[supervisor\] restarted (\S+) \(pid (\d+)\)", line)
            if match:
                pids[match.group(1)] = int(match.group(2))
        return pids

    def close(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def __exit__(self, *exc: object) -> None:
        self.close()
