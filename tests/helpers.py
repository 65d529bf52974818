"""Helpers the tests share: real processes, WebSocket clients, constants."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from pathlib import Path

from websockets.sync.client import ClientConnection

from wellmon.dashboard.auth import login_url
from wellmon.harness import Child, open_dashboard_ws

TOKEN = "test-token-0123456789"
KIOSK_TOKEN = "test-kiosk-token-0123456789"
ADMIN_TOKEN = "test-admin-token-0123456789"
ROLE_TOKENS = {"WELLMON_KIOSK_TOKEN": KIOSK_TOKEN, "WELLMON_ADMIN_TOKEN": ADMIN_TOKEN}
# Short state thresholds so that tests see stale and lost within seconds.
FAST_STATES = {"WELLMON_NODE_STALE_AFTER_S": "1.0", "WELLMON_NODE_LOST_AFTER_S": "2.5"}


class Processes:
    """Real `wellmon` processes, each in its own process group, killed at teardown."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, wait_ready: bool = True,
              timeout: float = 60.0) -> subprocess.Popen:
        """`wellmon ARGS`, its stderr in LOGS/NAME.log; the Popen gets `ready_line`."""
        with (self.logs / f"{name}.log").open("a") as log:
            child = Child(name, list(args), self.env, stderr=log)
        self.procs[name] = child.proc
        if wait_ready:
            if not child.wait_ready(timeout):
                raise AssertionError(f"{name} did not start: "
                                     + (self.logs / f"{name}.log").read_text())
            child.proc.ready_line = child.ready_line
        return child.proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def dashboard_ws_url(ready_line: str, path: str = "ws") -> str:
    """The WebSocket address of the dashboard whose READY line is ``ready_line``."""
    return ready_line.partition("url=")[2].replace("http://", "ws://") + path


def scores_until(ws: ClientConnection, done: Callable[[dict], bool],
                 timeout: float = 30.0) -> list[dict]:
    """Score messages (history included) until `done(score)` holds; fails on timeout."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            break
        batch = message.get("scores", []) if message["type"] == "history" else (
            [message["score"]] if message["type"] == "score" else [])
        for score in batch:
            seen.append(score)
            if done(score):
                return seen
    states = [(s["stream"], s["state"]) for s in seen[-5:]]
    raise AssertionError(f"condition not met in {timeout} s; last scores: {states}")


def open_ws(url: str, token: str = TOKEN) -> ClientConnection:
    """A WebSocket to the dashboard, signed in as the role of ``token`` (a Bearer header,
    as a program signs in; browsers use sign-in links and cookies)."""
    return open_dashboard_ws(url, token)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 303 itself is the answer under test


def http(url: str, headers: dict[str, str] | None = None, method: str = "GET",
         context: ssl.SSLContext | None = None) -> tuple[int, Message, bytes]:
    """One request, redirects not followed: status, headers and body, error statuses too."""
    handlers: list = [_NoRedirects()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def sign_in(base_url: str, role: str, token: str,
            context: ssl.SSLContext | None = None) -> str:
    """``name=value`` of the session cookie a browser gets for a fresh sign-in link of
    ``role`` (as `wellmon login ROLE` prints it); fails unless the link answers 303."""
    status, headers, body = http(login_url(base_url, role, token), context=context)
    assert status == 303, (status, body)
    return headers["Set-Cookie"].split(";")[0]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid one day (openssl), for TLS tests."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key
