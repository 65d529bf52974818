"""`wellmon` processes on loopback, started through the real CLI: the one process harness of
the benchmarks and the tests.

`Processes` starts `wellmon` subcommands (a node, a dashboard, captures, a proxy) each in a
process group of its own, waits for each one's READY line, kills them one by one and stops
them all at the end; `start_pipeline` starts a node, a dashboard and a capture pair per
stream, and starts again whichever of them has died. `LocalPipeline` is the same harness
around one `wellmon run`, entered once the run printed the dashboard's sign-in link.
Reading the dashboard's WebSocket: `wellmon.live_reader`.
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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wellmon.live_reader import bearer
from wellmon.streamer.lifecycle import READY_PREFIX
from wellmon.supervisor import CAPTURE_LEAD_NS, DASHBOARD_LINE

URL_PATTERN = re.compile(re.escape(DASHBOARD_LINE) + r"(http://\S+?)\?code=(\S+)")
"""The viewer's sign-in link that `wellmon run` prints: the dashboard's base URL and a code."""
CHILD_READY = re.compile(r"\s+(\S+)\s+pid (\d+)\s+ready")
"""The status line `wellmon run` prints when a child is ready: its name and process id."""
MODALITIES = ("video", "audio")


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


def ready_url(ready_line: str) -> str:
    """The address a READY line ends with (``url=``): the dashboard's base URL, ending in /."""
    return ready_line.partition("url=")[2].strip()


def dashboard_ws_url(ready_line: str, path: str = "ws") -> str:
    """The WebSocket address (``ws`` the live page's, ``ws/kiosk`` the kiosk's) of the
    dashboard whose READY line is ``ready_line``."""
    return ws_url(ready_url(ready_line), path)


def ws_url(base_url: str, path: str = "ws") -> str:
    """The WebSocket address ``path`` of the dashboard at ``base_url`` (http://…/)."""
    return base_url.replace("http://", "ws://", 1) + path


def capture_name(stream: str, modality: str) -> str:
    """The name `Processes.start_captures` gives a stream's capture of ``modality``."""
    return f"capture-{stream}-{modality}"


class StartFailed(RuntimeError):
    """A child exited, or was not ready in time, before its READY line."""


class Child:
    """`python -m wellmon ARGS` in a process group of its own (a Ctrl-C in the terminal, or
    a test's kill of the group, reaches only it), its output read in a thread: the last
    lines are kept for error messages and its ready line (READY, or what ``is_ready``
    accepts) is waited for."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], *,
                 stderr: Any = subprocess.STDOUT, keep_lines: int = 40,
                 python: str = sys.executable, cwd: Path | None = None,
                 is_ready: Callable[[str], bool] | None = None) -> None:
        self.name = name
        self.proc = subprocess.Popen([python, "-m", "wellmon", *args], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=stderr,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                     start_new_session=True)
        self.is_ready = is_ready or (lambda line: line.startswith(READY_PREFIX))
        self.ready_line = ""
        self.output: deque[str] = deque(maxlen=keep_lines)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if not self.ready_line:  # after it, nobody takes from the queue
                self._lines.put(line)

    def wait_ready(self, timeout: float) -> bool:
        """True once the ready line came; False when the process died or time ran out."""
        deadline = time.monotonic() + timeout
        while not self.ready_line:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                line = ""
            if line and self.is_ready(line):
                self.ready_line = line.strip()
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                return False
        return True


class Processes:
    """`wellmon` processes by name (`procs`), each a `Child`, started with the settings of
    ``env`` (read at each start, so a test may change it between starts).

    ``logs``: each child's stderr goes to LOGS/NAME.log (None: into its kept output).
    ``common_args`` go before every subcommand (a benchmark's ``--config FILE``).
    `stop_all` (also on leaving a ``with``) sends SIGTERM, gives each ``stop_grace_s`` to
    exit, then SIGKILL; with no grace, SIGKILL at once (a test's teardown). Each child is
    reaped.
    """

    def __init__(self, env: dict[str, str], logs: Path | None = None, *,
                 common_args: tuple[str, ...] = (), stop_grace_s: float = 0.0,
                 start_timeout_s: float = 60.0, keep_lines: int = 40,
                 python: str = sys.executable, cwd: Path | None = None) -> None:
        self.env = env
        self.logs = logs
        self.common_args = common_args
        self.stop_grace_s = stop_grace_s
        self.start_timeout_s = start_timeout_s
        self.keep_lines = keep_lines
        self.python = python
        self.cwd = cwd
        self.procs: dict[str, Child] = {}

    # --- one by one ---------------------------------------------------------------------------

    def start(self, name: str, *args: str, timeout: float | None = None,
              is_ready: Callable[[str], bool] | None = None) -> Child:
        """`wellmon ARGS` as child ``name``; StartFailed, with its output, when it exits or
        ``timeout`` (default ``start_timeout_s``) passes before its ready line."""
        log = (self.logs / f"{name}.log").open("a") if self.logs is not None else None
        try:
            child = Child(name, [*self.common_args, *args], self.env,
                          stderr=log or subprocess.STDOUT, keep_lines=self.keep_lines,
                          python=self.python, cwd=self.cwd, is_ready=is_ready)
        finally:
            if log is not None:
                log.close()
        self.procs[name] = child
        if not child.wait_ready(timeout or self.start_timeout_s):
            raise StartFailed(f"{name} did not start:\n" + self.output_of(name))
        return child

    def output_of(self, name: str) -> str:
        """What child ``name`` said: its log (with ``logs``), else its last lines."""
        if self.logs is not None and (self.logs / f"{name}.log").exists():
            return (self.logs / f"{name}.log").read_text()
        return "\n".join(self.procs[name].output)

    def kill(self, *names: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to each named child's process group and reap it; forget it."""
        for name in names:
            child = self.procs.pop(name)
            os.killpg(child.pid, sig)
            child.proc.wait(timeout=10)

    def stop_all(self) -> None:
        children = list(self.procs.values())
        self.procs.clear()
        first = signal.SIGTERM if self.stop_grace_s > 0 else signal.SIGKILL
        for child in children:
            if child.poll() is None:
                _signal_group(child, first)
        deadline = time.monotonic() + self.stop_grace_s
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.proc.wait()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    # --- a pipeline ---------------------------------------------------------------------------

    def start_captures(self, stream: str, source: str, *, epoch: bool = False) -> list[str]:
        """A video and an audio capture of ``source`` as ``stream``; their names. With
        ``epoch``, both start their clip on one shared epoch, as `wellmon run` does, so that
        video and audio capture times line up."""
        extra = ["--epoch-ns", str(time.time_ns() + CAPTURE_LEAD_NS)] if epoch else []
        names = [capture_name(stream, modality) for modality in MODALITIES]
        for name, modality in zip(names, MODALITIES):
            self.start(name, "capture", "--modality", modality, "--source", source,
                       "--stream", stream, *extra)
        return names

    def start_pipeline(self, sources: Mapping[str, str], *, epoch: bool = False) -> None:
        """A node, a dashboard, and a capture pair per stream (``sources``: stream → source),
        those that are not running: a child that died (after an earlier test failed, say)
        is started again, a capture pair together."""
        for name in [name for name, child in self.procs.items() if child.poll() is not None]:
            del self.procs[name]
        if "node" not in self.procs:
            self.start("node", "infer")
        if "dashboard" not in self.procs:
            self.start("dashboard", "dashboard")
        for stream, source in sources.items():
            pair = [capture_name(stream, modality) for modality in MODALITIES]
            if any(name not in self.procs for name in pair):
                self.kill(*(name for name in pair if name in self.procs))
                self.start_captures(stream, source, epoch=epoch)

    # --- looking at them ----------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        return {name: child.pid for name, child in self.procs.items()}

    def alive(self, *names: str) -> dict[str, bool]:
        return {name: name in self.procs and self.procs[name].poll() is None for name in names}

    def check_alive(self) -> None:
        """RuntimeError, naming the child and with its output, when one has exited."""
        for name, child in self.procs.items():
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with status {child.proc.returncode}:\n"
                                   + self.output_of(name))

    def dashboard_url(self, name: str = "dashboard") -> str:
        """The base URL (ending in /) of dashboard child ``name``."""
        return ready_url(self.procs[name].ready_line)

    def ws_url(self, path: str = "ws") -> str:
        """The dashboard's WebSocket ``path``: ``ws`` the live page's, ``ws/kiosk`` the
        kiosk's; open it with ``open_dashboard_ws(url, token)`` or read it with a
        `LiveReader` (wellmon.live_reader)."""
        return ws_url(self.dashboard_url(), path)

    def get(self, path: str, token: str) -> Any:
        """The dashboard's JSON answer at ``path`` (``api/status``, …)."""
        return get_json(f"{self.dashboard_url()}{path}", token)


def _signal_group(child: Child, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


class LocalPipeline(Processes):
    """`wellmon run --source SOURCE ARGS` on free loopback ports (``extra_env`` adds settings;
    a None value removes one), started by ``python`` in ``cwd``; entered once the run
    printed the viewer's sign-in link, or, for a run without the dashboard (``--parts``),
    once child ``ready_child`` is ready. Leaving stops it with SIGTERM (SIGKILL after 20 s)."""

    NAME = "wellmon run"

    def __init__(self, source: str, token: str, state_dir: Path, *, extra_env: dict | None = None,
                 args: tuple[str, ...] = (), start_timeout_s: float = 120.0,
                 python: str = sys.executable, cwd: Path | None = None,
                 ready_child: str | None = None) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **loopback_env(token, state_dir), **(extra_env or {})}
        super().__init__({k: v for k, v in env.items() if v is not None}, stop_grace_s=20.0,
                         start_timeout_s=start_timeout_s, keep_lines=2000, python=python,
                         cwd=cwd)
        self.token = token
        self.run_args = ("run", "--source", source, *args)
        self.ready_child = ready_child
        self.run: Child | None = None

    def _started(self, line: str) -> bool:
        if self.ready_child is None:
            return bool(URL_PATTERN.search(line))
        ready = CHILD_READY.match(line)
        return bool(ready and ready.group(1) == self.ready_child)

    def __enter__(self) -> LocalPipeline:
        try:
            self.run = self.start(self.NAME, *self.run_args, is_ready=self._started)
        except StartFailed:
            self.stop_all()
            raise
        return self

    @property
    def proc(self) -> subprocess.Popen:
        return self.run.proc

    @property
    def output(self) -> deque[str]:
        """The run's last lines: its own and its children's, which it forwards."""
        return self.run.output

    def dashboard_url(self, name: str = "dashboard") -> str:
        """The dashboard's base URL, from the sign-in link the run printed ("" without one)."""
        match = URL_PATTERN.search(self.run.ready_line)
        return match.group(1) if match else ""

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
        """Stop the run; its exit status (None when it never started)."""
        self.stop_all()
        return None if self.run is None else self.run.proc.returncode
