"""The dashboard: one asyncio server for the pages, their assets, the WebSockets and the API.

Score messages arrive from the inference node over ZeroMQ (dashboard/feed.py) and fan out to
the browsers (dashboard/fanout.py); the kiosk's checks run here on the same score messages
(dashboard/checks.py) and are stored in SQLite (dashboard/store.py). Requests are routed and
authorised in dashboard/http_routes.py, the JSON API answers in dashboard/rest_api.py, the
pages' WebSockets are dashboard/page_sockets.py and dashboard/kiosk_socket.py. This module
wires them, runs the housekeeping, and serves, over HTTPS and WSS with
``dashboard.tls_cert`` and ``tls_key``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.server import serve

from wellmon.config import Config, ConfigError
from wellmon.dashboard.auth import Sessions
from wellmon.dashboard.checks import KioskChecks
from wellmon.dashboard.fanout import WRITE_LIMIT, Hub
from wellmon.dashboard.feed import ScoreFeed
from wellmon.dashboard.http_routes import HttpRoutes
from wellmon.dashboard.kiosk_socket import KioskSocket
from wellmon.dashboard.page_sockets import MAX_CLIENT_MESSAGE, PageSockets
from wellmon.dashboard.person_secrets import PersonSecrets
from wellmon.dashboard.rest_api import RestApi
from wellmon.dashboard.store import Store, StoreError, open_store
from wellmon.streamer.lifecycle import announce_ready, log
from wellmon.streamer.wire import ports, routes

ROLE = "dashboard"


@dataclass(frozen=True)
class DashboardFigures:
    """The dashboard's counts, each from the part that keeps it; ``/api/status`` and the
    Prometheus metrics both read them here."""

    scores_received: int  # score messages received and passed on
    rejected: dict[str, int]  # messages from the node dropped as malformed, by reason
    client_faults: dict[str, int]  # by reason: protocol faults, refused kiosk requests, stalls
    refused: dict[str, int]  # HTTP and WebSocket requests refused, by reason
    dropped_updates: int  # from full client queues, live pages and kiosks, since the start
    live_clients: int  # live pages' WebSockets (/ws)
    kiosk_clients: int  # kiosk WebSockets (/ws/kiosk)
    queue_depths: tuple[int, ...]  # updates waiting in each client's queue, both kinds


class Dashboard:
    def __init__(self, config: Config, tokens: dict[str, str], store: Store) -> None:
        self.config = config
        cfg = config.dashboard
        self.store = store
        interrupted = store.mark_interrupted()
        if interrupted:
            log(ROLE, f"{interrupted} check(s) interrupted by the last stop marked incomplete")
        store.renew_lease(time.time(), cfg.lease_s, cfg.kiosk_stream)
        self.hub = Hub(cfg.history_s, config.node.hop_s, cfg.client_queue)
        store.on_checks_changed = self.hub.checks_changed
        self.checks = KioskChecks(store, cfg.kiosk_name, cfg.kiosk_stream, cfg.check_s)
        self.checks.site_kiosk_streams = frozenset(store.kiosk_streams())
        self.secrets = PersonSecrets(store)
        self.kiosk = KioskSocket(self.checks, self.secrets, cfg.retention_days)
        self.sockets = PageSockets(cfg, self.hub, self.kiosk)
        self.api = RestApi(store, self.secrets, self.status, self.hub.history_of)
        self.routes = HttpRoutes(cfg, tokens, Sessions(tokens, cfg.session_hours * 3600),
                                 self.api, self.sockets)
        self.feed = ScoreFeed(config, self._take_score, self.hub.set_node_stats,
                              self._observe_latency)
        self.url = ""
        self.metrics: Any = None  # wellmon.metrics.DashboardMetrics when metrics.enabled

    def _take_score(self, score: dict[str, Any]) -> None:
        """A score to the live pages (admins' only while it is a person's check's), then to
        the kiosk's check."""
        self.hub.add_score(score, private=self.checks.is_private(score["stream"]))
        self.kiosk.deliver(self.checks.on_score(score, time.time()))

    def _observe_latency(self, latency_s: float) -> None:
        if self.metrics is not None:
            self.metrics.score(latency_s)

    def figures(self) -> DashboardFigures:
        """The counts now; safe to call from the metrics endpoint's thread (every count is
        copied whole)."""
        live, kiosk = list(self.hub.clients), list(self.kiosk.clients)
        return DashboardFigures(
            scores_received=self.feed.scores_received,
            rejected=dict(self.feed.rejected.counts),
            client_faults=_summed(self.sockets.faults, self.kiosk.faults),
            refused=_summed(self.routes.refused, self.sockets.refused),
            dropped_updates=self.hub.dropped_updates + self.kiosk.dropped_updates,
            live_clients=len(live), kiosk_clients=len(kiosk),
            queue_depths=tuple(len(c.queue) for c in live + kiosk))

    def status(self) -> dict[str, Any]:
        """``GET /api/status``: the streams and nodes as last heard of, and the figures."""
        figures = self.figures()
        return {**self.hub.streams_and_nodes(),
                "clients": figures.live_clients,
                "rejected_scores": figures.rejected,
                "client_faults": figures.client_faults,
                "refused": figures.refused,
                "dropped_updates": figures.dropped_updates}

    async def _housekeeping(self, stop: threading.Event) -> None:
        """Fail stalled checks; disconnect clients that stopped reading; renew this
        dashboard's lease and close the checks of peers whose lease ran out (a third of a
        lease apart); apply the retention once an hour."""
        last_retention = last_lease = time.monotonic()
        lease_s = self.config.dashboard.lease_s
        while not stop.is_set():
            await asyncio.sleep(0.25)
            self.kiosk.deliver(self.checks.tick(time.time()))
            self.sockets.drop_stalled_clients(time.monotonic())
            if time.monotonic() - last_lease > lease_s / 3:
                last_lease = time.monotonic()
                self._keep_lease(lease_s)
            if time.monotonic() - last_retention > 3600:
                last_retention = time.monotonic()
                try:
                    self.store.apply_retention(time.time())
                except StoreError as e:
                    log(ROLE, f"store unavailable, retention waits an hour: {e}")

    def _keep_lease(self, lease_s: float) -> None:
        """Renew the lease, then close what dead peers left running. A store that cannot be
        reached is logged and tried again at the next turn: the live page goes on."""
        try:
            self.store.renew_lease(time.time(), lease_s, self.config.dashboard.kiosk_stream)
            self.checks.site_kiosk_streams = frozenset(self.store.kiosk_streams())
            for peer, n in self.store.close_abandoned(time.time()).items():
                log(ROLE, f"{n} check(s) of dashboard {peer}, whose lease ran out, "
                          "marked incomplete")
        except StoreError as e:
            log(ROLE, f"store unavailable: {e}")

    async def run(self, stop: threading.Event,
                  observe: Callable[[Dashboard], str] | None = None) -> None:
        """Serve until ``stop``; ``observe`` as in `serve_dashboard`."""
        cfg = self.config.dashboard
        tls = _tls_context(cfg.tls_cert, cfg.tls_key)
        served = observe(self) if observe is not None else ""
        server = serve(self.sockets.handle, cfg.host, cfg.port,
                       process_request=self.routes.process_request,
                       process_response=self.routes.process_response,
                       max_size=MAX_CLIENT_MESSAGE, write_limit=WRITE_LIMIT,
                       ping_interval=20, ssl=tls, server_header="wellmon")
        try:
            await server  # the bind, so that only its failure becomes a setting's error
        except OSError as exc:
            setting = (ports.DASHBOARD_PORT if exc.errno == errno.EADDRINUSE
                       else "dashboard.host and dashboard.port")
            shown = ports.tcp_listener(setting, cfg.host, cfg.port).shown
            # asyncio's strerror repeats the address; the system's text alone is enough
            reason = os.strerror(exc.errno) if (exc.errno or 0) > 0 else str(exc)
            raise ports.cannot_listen(setting, shown, exc.errno, reason) from None
        async with server:
            host, port = next(iter(server.sockets)).getsockname()[:2]
            self.url = f"{'https' if tls else 'http'}://{_url_host(host)}:{port}/"
            receiver = asyncio.create_task(self.feed.receive())
            housekeeping = asyncio.create_task(self._housekeeping(stop))
            loop = asyncio.get_running_loop()
            threading.Thread(target=self.store.listen_for_changes, name="store-listener",
                             args=(lambda: loop.call_soon_threadsafe(self.hub.checks_changed),
                                   stop), daemon=True).start()
            announce_ready(f"{ROLE}{served} url={self.url}")  # url= last: it is read to the end
            while not stop.is_set():
                await asyncio.sleep(0.1)
                for task in (receiver, housekeeping):
                    if task.done():
                        task.result()
            receiver.cancel()
            housekeeping.cancel()


def _summed(*counts: Mapping[str, int]) -> dict[str, int]:
    """Counts by reason added up; each is copied whole first (another thread may add)."""
    total: dict[str, int] = {}
    for copy in [dict(c) for c in counts]:
        for reason, count in copy.items():
            total[reason] = total.get(reason, 0) + count
    return total


def _tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """HTTPS/WSS from the configured PEM files; one without the other is a config error."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("dashboard.tls_cert and dashboard.tls_key go together: set both "
                          "or neither")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for name, value in (("tls_cert", cert), ("tls_key", key)):
        if not Path(value).expanduser().is_file():
            raise ConfigError(f"dashboard.{name}: file not found: {value}")
    try:
        context.load_cert_chain(Path(cert).expanduser(), Path(key).expanduser())
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"dashboard.tls_cert/tls_key: cannot use {cert} with {key}: "
                          f"{exc}") from None
    return context


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_dashboard(config: Config, tokens: dict[str, str], stop: threading.Event,
                    observe: Callable[[Dashboard], str] | None = None) -> int:
    """Run the dashboard until ``stop``; ``observe`` (the metrics endpoint, when the command
    line turns it on) gets it before it listens and returns what its READY line adds."""
    from wellmon.streamer.wire import (
        exposure,  # refuse plain HTTP, clear links, open metrics off-host
    )

    exposure.check(config, [routes.dashboard_scores(config)], dashboard=True)
    store = open_store(config.store.url or config.dashboard.store,
                       keep_series_days=config.dashboard.retention_days,
                       owner=config.dashboard.instance or socket.gethostname())
    try:
        asyncio.run(Dashboard(config, tokens, store).run(stop, observe))
    finally:
        store.close()
    return 0
