"""`wellmon run`: every process of the pipeline as a child, started, watched and stopped.

Children are separate OS processes talking ZeroMQ on loopback, exactly as
they would on several machines. Each prints `READY ...` when its sockets are
up; a child that exits before that has failed to start, and `run` exits
non-zero with its last error lines. A child that dies later is restarted
with back-off (a capture whose file ended is not). Ctrl-C or SIGTERM stops
the children (SIGTERM, then SIGKILL after a grace period) and reaps them;
each child also asks the kernel to stop it if the supervisor dies, so no
orphan is left either way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import webbrowser
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from wellmon import config as config_mod
from wellmon.config import Config
from wellmon.dashboard.auth import LOGIN_CODE_S, TOKEN_ENVS, login_url, resolve_tokens
from wellmon.errors import EXIT_USAGE
from wellmon.streamer import sources
from wellmon.streamer.lifecycle import READY_PREFIX, die_with, stop_on_signals
from wellmon.streamer.wire import exposure, ports, routes

PARENT_ENV = "WELLMON_PARENT_PID"
DASHBOARD_LINE = "Dashboard: "
STOP_GRACE_S = 5.0
CAPTURE_LEAD_NS = 1_000_000_000
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0


@dataclass
class Child:
    name: str
    args: list[str]
    restartable_on_success: bool = True
    proc: subprocess.Popen | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    detail: str = ""
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    started_at: float = 0.0
    backoff_s: float = 1.0
    restart_at: float | None = None
    finished: bool = False


class StartError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Supervisor:
    def __init__(self, config: Config, out=sys.stdout) -> None:
        self.config = config
        self.out = out
        self.parts = config_mod.run_parts(config)
        self.tokens = resolve_tokens(config.dashboard) if "dashboard" in self.parts else {}
        self._dir = tempfile.TemporaryDirectory(prefix="wellmon-")
        self.config_path = Path(self._dir.name) / "effective.yaml"
        config_mod.dump(config, self.config_path)
        self.plan = sources.plan(config.capture.source, config.capture.stream)
        self.children = [Child(part, [command]) for part, command in
                         (("node", "infer"), ("dashboard", "dashboard")) if part in self.parts]
        if "capture" in self.parts:
            for src in {self.plan.video, self.plan.audio} - {None}:
                sources.check_available(src)
            for modality in ("video", "audio"):
                if getattr(self.plan, modality) is not None:
                    self.children.append(Child(f"capture-{modality}",
                                               ["capture", "--modality", modality],
                                               restartable_on_success=False))
        self.url = ""
        self._print_lock = threading.Lock()

    # --- output ---------------------------------------------------------------------------

    def say(self, message: str) -> None:
        with self._print_lock:
            print(message, file=self.out, flush=True)

    def _forward(self, child: Child, stream, is_stdout: bool) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            if is_stdout and line.startswith(READY_PREFIX) and not child.ready.is_set():
                child.detail = line[len(READY_PREFIX):].strip()
                child.ready.set()
                continue
            if not is_stdout:
                child.errors.append(line)
            self.say(f"[{child.name}] {line}")

    # --- lifecycle ------------------------------------------------------------------------

    def _environment(self, child: Child) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith(config_mod.ENV_PREFIX) and k not in TOKEN_ENVS.values())}
        env[PARENT_ENV] = str(os.getpid())
        env["PYTHONUNBUFFERED"] = "1"
        if child.name == "dashboard":
            env.update({TOKEN_ENVS[role]: token for role, token in self.tokens.items()})
        return env

    def _spawn(self, child: Child) -> None:
        args = list(child.args)
        if child.name.startswith("capture-"):
            args += ["--epoch-ns", str(time.time_ns() + CAPTURE_LEAD_NS)]
        argv = [sys.executable, "-m", "wellmon", "--config", str(self.config_path), *args]
        child.ready.clear()
        child.errors.clear()
        child.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                      env=self._environment(child), start_new_session=True)
        child.started_at = time.monotonic()
        for stream, is_stdout in ((child.proc.stdout, True), (child.proc.stderr, False)):
            threading.Thread(target=self._forward, args=(child, stream, is_stdout),
                             daemon=True).start()

    def _await_ready(self, child: Child, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.config.run.start_timeout_s
        while not child.ready.wait(0.05):
            code = child.proc.poll()
            if code is not None:
                time.sleep(0.2)  # let the forwarding threads collect the last lines
                lines = [line for line in child.errors if line.strip()]
                if code == EXIT_USAGE and lines:  # a user error: the child's own one line
                    reason = lines[-1].removeprefix("wellmon: ")
                    raise StartError(f"{child.name} failed to start: {reason}", EXIT_USAGE)
                raise StartError(f"{child.name} failed to start (exit status {code}): "
                                 f"{'; '.join(lines) or 'no output'}", 1)
            if stop.is_set():
                raise StartError("interrupted while starting", 130)
            if time.monotonic() > deadline:
                raise StartError(f"{child.name} was not ready after "
                                 f"{self.config.run.start_timeout_s:g} s", 1)

    def start(self, stop: threading.Event) -> None:
        for child in self.children:
            self._spawn(child)
            self._await_ready(child, stop)
            self.say(f"  {child.name:<15} pid {child.proc.pid:<7} ready  {child.detail}")
            if child.name == "dashboard":
                self.url = child.detail.partition("url=")[2].strip()

    def dashboard_url(self, role: str = "viewer") -> str:
        """A one-time sign-in link to the page of ``role`` (never the role's token)."""
        return login_url(self.url, role, self.tokens[role])

    def watch(self, stop: threading.Event) -> None:
        """Until stopped: report exits, restart children that died (with back-off)."""
        while not stop.wait(0.2):
            now = time.monotonic()
            for child in self.children:
                if child.finished or child.proc is None:
                    continue
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.restart_at = None
                        self._spawn(child)
                        self.say(f"[supervisor] restarted {child.name} (pid {child.proc.pid})")
                    continue
                code = child.proc.poll()
                if code is None:
                    if now - child.started_at > STABLE_AFTER_S:
                        child.backoff_s = 1.0
                    continue
                if code == 0 and not child.restartable_on_success:
                    self.say(f"[supervisor] {child.name} finished: its source ended")
                    child.finished = True
                elif self.config.run.restart_children:
                    self.say(f"[supervisor] {child.name} exited with status {code}; "
                             f"restarting in {child.backoff_s:g} s")
                    child.restart_at = now + child.backoff_s
                    child.backoff_s = min(MAX_BACKOFF_S, child.backoff_s * 2)
                else:
                    self.say(f"[supervisor] {child.name} exited with status {code}")
                    child.finished = True

    def stop_all(self) -> None:
        running = [c for c in reversed(self.children) if c.proc and c.proc.poll() is None]
        for child in running:
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in running:
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"[supervisor] {child.name} did not stop in {STOP_GRACE_S:g} s; killed")
                child.proc.kill()
                child.proc.wait()
        for child in self.children:
            if child.proc is not None:
                child.proc.wait()
        self._dir.cleanup()


def listeners(config: Config) -> list[ports.Listener | None]:
    """The TCP ports the children of `wellmon run` (its ``run.parts``) listen on, each with
    its setting. The captures only connect: a capture host's node.input is the node's."""
    parts = config_mod.run_parts(config)
    found = []
    if config.dashboard.port and "dashboard" in parts:
        found.append(ports.tcp_listener(ports.DASHBOARD_PORT, config.dashboard.host,
                                        config.dashboard.port))
    if not config.wire.proxy and "node" in parts:
        found += [ports.zmq_listener("node.input", config.node.input),
                  ports.zmq_listener("node.output", config.node.output)]
    if config.metrics.enabled:
        for part in parts:
            name = f"{part}_port"
            if getattr(config.metrics, name):
                found.append(ports.tcp_listener(f"metrics.{name}", config.metrics.host,
                                                getattr(config.metrics, name)))
    return found


def run(config: Config) -> int:
    # One line before any child starts: an exposed address or a port that another program
    # holds would stop a child anyway. The children give the warnings (on every restart too).
    parts = config_mod.run_parts(config)
    exposure.check(config, routes.addresses(config), dashboard="dashboard" in parts,
                   warn=False)
    ports.check_free(listeners(config))
    stop = stop_on_signals(exit_grace_s=None)
    supervisor = Supervisor(config)
    if "capture" in parts:
        where = "" if "node" in parts else f", sending to {routes.capture_media(config)}"
        supervisor.say(f"wellmon: starting stream '{supervisor.plan.stream}' from "
                       f"{config.capture.source}{where}")
    else:
        supervisor.say(f"wellmon: starting {', '.join(parts)} (no capture on this host)")
    try:
        supervisor.start(stop)
        if "dashboard" in parts:
            supervisor.say(f"{DASHBOARD_LINE}{supervisor.dashboard_url()}")
            supervisor.say(f"Kiosk:     {supervisor.dashboard_url('kiosk')}")
            supervisor.say("Operator:  run `wellmon login admin` for a sign-in link")
            supervisor.say(f"(each link signs in one browser, within {LOGIN_CODE_S // 60} "
                           "minutes; `wellmon login viewer|kiosk|admin` makes a new one)")
        supervisor.say("A wellness indicator, not a diagnosis. Press Ctrl-C to stop.")
        if "dashboard" in parts and config.run.open_browser and _has_display():
            webbrowser.open(supervisor.dashboard_url())
        supervisor.watch(stop)
    except StartError as exc:
        print(f"wellmon: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        supervisor.stop_all()
    supervisor.say("wellmon: stopped")
    return 0


def _has_display() -> bool:
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY")
                                            or os.environ.get("WAYLAND_DISPLAY"))


def die_with_parent() -> None:
    """In a supervised child: get SIGTERM when the supervisor dies, even by SIGKILL."""
    parent = os.environ.get(PARENT_ENV)
    if parent:
        die_with(int(parent))
