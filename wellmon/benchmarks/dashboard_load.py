"""`wellmon bench dashboard`: does a flood of idle WebSockets stall the dashboard?

One stream runs through the real node and dashboard. A `ScoreClient` reads the live scores
as a browser would, and a prober asks `/healthz` every 100 ms. First a quiet period; then
``idle`` raw WebSocket connections with the viewer token that finish the handshake and
never read again (what a holder of a viewer token can do, red-team finding 4), and the
same measurements under that load. Printed, never asserted: `/healthz` response time and
the score latency (capture of the window's last frame to the client) in each period, how
many idle sockets the dashboard took and how many its caps refused, and its memory.
"""

from __future__ import annotations

import base64
import http.client
import os
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from wellmon.benchmarks import ScoreClient, fleet, require_psutil, rss_mb
from wellmon.config import Config

PROBE_EVERY_S = 0.1
PROBE_TIMEOUT_S = 30.0


class HealthProbe:
    """Asks `/healthz` every PROBE_EVERY_S in a thread; keeps (sent at, seconds to answer,
    or None when it failed or timed out)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.samples: list[tuple[float, float | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=PROBE_TIMEOUT_S + 5)

    def _run(self) -> None:
        while not self._stop.wait(PROBE_EVERY_S):
            sent = time.monotonic()
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=PROBE_TIMEOUT_S)
                conn.request("GET", "/healthz")
                ok = conn.getresponse().status == 200
                conn.close()
            except OSError:
                ok = False
            self.samples.append((sent, time.monotonic() - sent if ok else None))

    def between(self, start: float, end: float) -> tuple[list[float], int]:
        """Answer times of probes sent in [start, end), and how many got no answer."""
        inside = [s for s in list(self.samples) if start <= s[0] < end]
        return [t for _, t in inside if t is not None], sum(t is None for _, t in inside)


def open_idle_socket(base_url: str, token: str) -> tuple[socket.socket | None, int]:
    """A WebSocket handshake on ``/ws`` with the viewer token, then nothing: the socket is
    returned open and is never read again. Returns (socket or None, HTTP status)."""
    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
                  ).encode())
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    status = int(head.split()[1]) if len(head.split()) > 1 else 0
    if status != 101:
        sock.close()
        return None, status
    return sock, status


def _line(name: str, seconds: list[float], failed: int) -> str:
    """p50, p99 and max of ``seconds``, in milliseconds."""
    if not seconds:
        return f"  {name:<34} no answers ({failed} failed)"
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e3
    text = (f"  {name:<34} p50 {p50:7.1f}  p99 {p99:7.1f}  max {max(seconds) * 1e3:7.1f} ms"
            f"  ({len(seconds)} samples")
    return text + (f", {failed} failed)" if failed else ")")


def bench_dashboard(config: Config, idle: int, seconds: float, warmup_s: float) -> int:
    """Quiet, then ``idle`` idle viewer sockets: /healthz and live-score latency in each.
    ``warmup_s`` fills the history a new socket is sent (dashboard.history_s at most)."""
    psutil = require_psutil()
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as state, fleet(config, Path(state), token) as pipeline:
        pipeline.start_pipeline({"load-0": "sample"}, epoch=True)
        dashboard = psutil.Process(pipeline.procs["dashboard"].pid)
        print(f"bench dashboard: one stream, {warmup_s:g} s of history; {seconds:g} s quiet, "
              f"then {idle} idle viewer "
              f"sockets for {seconds:g} s (caps: dashboard.max_clients_per_role "
              f"{config.dashboard.max_clients_per_role}, max_clients "
              f"{config.dashboard.max_clients})", flush=True)
        with ScoreClient(pipeline.ws_url(), token) as client, \
                HealthProbe(pipeline.dashboard_url()) as probe:
            time.sleep(warmup_s)
            rss_quiet = rss_mb(dashboard)
            quiet = (time.monotonic(), time.time())
            time.sleep(seconds)
            opened: list[socket.socket] = []
            statuses: dict[int, int] = {}
            loaded_at = (time.monotonic(), time.time())
            for _ in range(idle):
                try:
                    sock, status = open_idle_socket(pipeline.dashboard_url(), token)
                except OSError:
                    sock, status = None, 0
                statuses[status] = statuses.get(status, 0) + 1
                if sock is not None:
                    opened.append(sock)
            opening_s = time.monotonic() - loaded_at[0]
            time.sleep(seconds)
            end = (time.monotonic(), time.time())
            rss_loaded = rss_mb(dashboard)
            for sock in opened:
                sock.close()
            pipeline.check_alive()
            if client.error is not None:
                raise RuntimeError(f"the live client failed: {client.error!r}")
        periods = {"quiet": (quiet, loaded_at), "idle sockets": (loaded_at, end)}
        for name, ((mono0, wall0), (mono1, wall1)) in periods.items():
            health, failed = probe.between(mono0, mono1)
            latency = [r.received - r.t_last_frame for r in client.between(wall0, wall1)
                       if r.state == "live" and r.t_last_frame is not None]
            print(f"{name}:")
            print(_line("/healthz answer", health, failed))
            print(_line("score latency (frame to client)", latency, 0))
        refused = {k: v for k, v in statuses.items() if k != 101}
        print(f"idle sockets: {statuses.get(101, 0)} accepted, "
              f"{sum(refused.values())} refused (HTTP status: count {refused or '-'}), "
              f"opened in {opening_s:.1f} s")
        print(f"dashboard RSS: {rss_quiet or 0:.0f} MB quiet, {rss_loaded or 0:.0f} MB with "
              f"the idle sockets")
    return 0
