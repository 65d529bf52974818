"""The dashboard: one asyncio server for the pages, their assets, the WebSockets and the API.

Score messages arrive from the inference node over ZeroMQ and fan out to the
browsers. Each browser has a bounded queue: when it cannot keep up, its
oldest updates are dropped, so a slow client never slows the node or the
other clients. A new client first gets the recent history. The kiosk's checks
run here on the same score messages (dashboard/checks.py) and are stored in
SQLite (dashboard/store.py). Three roles (viewer, kiosk, admin) have their own
tokens (dashboard/auth.py; docs/dashboard-api.md lists what each may open);
`/healthz` is open. WebSockets also check that the page's Origin is this
server. With `dashboard.tls_cert` and `tls_key` it serves HTTPS and WSS.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import http
import json
import mimetypes
import re
import ssl
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import zmq
import zmq.asyncio
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from dashboard.auth import COOKIES, role_of
from dashboard.checks import CheckError, KioskChecks
from dashboard.store import Store, open_store
from streamer import routes
from streamer.lifecycle import announce_ready, log
from streamer.protocol import Rejected, RejectionCounter, decode_score
from streamer.security import Curve
from wellmon.config import Config, ConfigError

ROLE = "dashboard"
STATIC = Path(__file__).parent / "static"
MAX_CLIENT_MESSAGE = 4096
WRITE_LIMIT = 32 * 1024
"""Bytes waiting in a client's transport above which sending to it waits (websockets'
flow control): at most this much of our own updates is in flight to a slow client."""
FLOOD_BYTES = 8 * 2**20
"""A client whose transport holds this much more than the longest message we sent it has
not read the Pongs to its own Pings: websockets writes those outside every queue."""
PAGES = {"/": "index.html", "/index.html": "index.html", "/kiosk": "kiosk.html",
         "/operator": "operator.html"}
ALLOWED = {
    "/": {"viewer", "admin"}, "/index.html": {"viewer", "admin"}, "/ws": {"viewer", "admin"},
    "/api/status": {"viewer", "admin"}, "/kiosk": {"kiosk", "admin"},
    "/ws/kiosk": {"kiosk", "admin"}, "/operator": {"admin"},
}
"""Path -> roles that may open it; ``/api/checks`` and ``/api/persons`` are admin only and
``/static/`` assets are open to every role (they hold no data)."""
CHECK_PATH = re.compile(r"^/api/checks/(\d+)$")
PERSON_PATH = re.compile(r"^/api/persons/([A-Za-z0-9._-]{1,64})$")
SECURITY_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; connect-src 'self'; "
                                "style-src 'self' 'unsafe-inline'"),
]


@dataclass(eq=False)
class Client:
    """One browser: a drop-oldest queue and a wake-up event for its sender task."""

    connection: ServerConnection
    capacity: int
    queue: deque[str] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0
    longest: int = 0  # bytes of the longest message handed to the connection
    buffered: int = 0  # bytes in its transport at the last look
    read_at: float = field(default_factory=time.monotonic)  # when it last took some

    def offer(self, text: str) -> bool:
        """Queue `text`; True when the oldest update was dropped for it."""
        full = len(self.queue) >= self.capacity
        if full:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(text)
        self.ready.set()
        return full

    def fault(self, now: float, stalled_after_s: float) -> str | None:
        """Why this client must be disconnected, or None. Our own writes wait while more
        than WRITE_LIMIT is buffered, so a buffer above it that has not gone down means the
        client reads nothing; a buffer far beyond anything we sent means Pongs pile up."""
        size = self.connection.transport.get_write_buffer_size()
        if size <= WRITE_LIMIT or size < self.buffered:
            self.read_at = now
        self.buffered = size
        if size > FLOOD_BYTES + self.longest:
            return "ping_flood"
        return "not_reading" if now - self.read_at > stalled_after_s else None


class Hub:
    """Recent history per stream and the set of connected clients."""

    def __init__(self, history_s: float, hop_s: float, client_queue: int) -> None:
        self.history_len = max(1, int(history_s / hop_s))
        self.client_queue = client_queue
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self.clients: set[Client] = set()
        self.node_stats: dict[str, Any] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.rejected = RejectionCounter()
        self.client_faults: Counter = Counter()
        self.refused: Counter = Counter()
        self.scores_received = 0
        self.dropped_updates = 0  # over all clients ever, live pages and kiosks
        self.stream_seen: dict[str, float] = {}  # wall clock of each stream's last score
        self.node_seen: dict[str, float] = {}  # and of each node's last statistics

    def add_score(self, score: dict[str, Any]) -> None:
        self.scores_received += 1
        self.stream_seen[score["stream"]] = time.time()
        self.history.setdefault(score["stream"], deque(maxlen=self.history_len)).append(score)
        self.broadcast({"type": "score", "score": score})

    def set_node_stats(self, stats: dict[str, Any]) -> None:
        self.node_stats = stats
        self.nodes[str(stats.get("name", "node"))] = stats
        self.node_seen[str(stats.get("name", "node"))] = time.time()
        self.broadcast({"type": "node", "node": stats})

    def broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, allow_nan=False)
        for client in self.clients:
            self.dropped_updates += client.offer(text)

    def hello(self) -> str:
        scores = [s for h in self.history.values() for s in h]
        scores.sort(key=lambda s: s["t_end"])
        return json.dumps({"type": "history", "scores": scores, "node": self.node_stats})

    def status(self) -> dict[str, Any]:
        """`age_s`: seconds since the dashboard last heard of a stream or node; a stream whose
        node died keeps its last state, and only its age tells."""
        now = time.time()
        return {
            "streams": {name: {"state": h[-1]["state"], "t_end": h[-1]["t_end"],
                               "age_s": round(now - self.stream_seen[name], 3)}
                        for name, h in self.history.items() if h},
            "node": self.node_stats,
            "nodes": {name: {**stats, "age_s": round(now - self.node_seen[name], 3)}
                      for name, stats in self.nodes.items()},
            "clients": len(self.clients),
            "rejected_scores": dict(self.rejected.counts),
            "client_faults": dict(self.client_faults),
            "refused": dict(self.refused),
            "dropped_updates": self.dropped_updates,
        }


class Dashboard:
    def __init__(self, config: Config, tokens: dict[str, str], store: Store) -> None:
        self.config = config
        self.tokens = tokens
        cfg = config.dashboard
        self.hub = Hub(cfg.history_s, config.node.hop_s, cfg.client_queue)
        self.store = store
        interrupted = store.mark_interrupted()
        if interrupted:
            log(ROLE, f"{interrupted} check(s) interrupted by the last stop marked incomplete")
        self.checks = KioskChecks(store, cfg.kiosk_name, cfg.kiosk_stream, cfg.check_s)
        self.kiosk_clients: set[Client] = set()
        self.check_owner: Client | None = None
        self.url = ""
        self.metrics: Any = None  # wellmon.metrics.DashboardMetrics when metrics.enabled

    # --- HTTP side -------------------------------------------------------------------------

    def _roles(self, request: Request) -> tuple[set[str], str | None]:
        """Roles the request holds (query token and cookies), and the query token's role."""
        query = parse_qs(urlsplit(request.path).query)
        from_query = role_of(self.tokens, query["token"][0]) if query.get("token") else None
        cookie = SimpleCookie(request.headers.get("Cookie", ""))
        roles = {role for role, name in COOKIES.items()
                 if name in cookie and role_of(self.tokens, cookie[name].value) == role}
        if from_query:
            roles.add(from_query)
        return roles, from_query

    def _refuse(self, connection: ServerConnection, request: Request, reason: str,
                status: http.HTTPStatus) -> Response:
        self.hub.refused[reason] += 1
        path = urlsplit(request.path).path
        log(ROLE, f"refused {request.method} {path} from {connection.remote_address[0]}: "
                  f"{reason}")
        return connection.respond(status, f"wellmon: {reason}\n")

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        roles, from_query = self._roles(request)
        if not roles:
            offered = "token" in parse_qs(urlsplit(request.path).query) or any(
                name in request.headers.get("Cookie", "") for name in COOKIES.values())
            reason = "wrong token" if offered else "no token"
            return self._refuse(connection, request,
                                f"{reason}: open the URL that `wellmon run` printed",
                                http.HTTPStatus.UNAUTHORIZED)
        allowed = ALLOWED.get(path, {"admin"} if path.startswith("/api/") else None)
        if path.startswith("/static/"):
            allowed = set(COOKIES)
        if allowed is None:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        if not roles & allowed:
            return self._refuse(connection, request,
                                f"the {'/'.join(sorted(roles))} token may not open this",
                                http.HTTPStatus.FORBIDDEN)
        if request.method not in ("GET", "DELETE") or (request.method == "DELETE"
                                                       and not path.startswith("/api/persons/")):
            return self._refuse(connection, request, f"method {request.method} not allowed",
                                http.HTTPStatus.METHOD_NOT_ALLOWED)
        if path.startswith("/ws"):
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("Host"):
                return self._refuse(connection, request, "cross-origin WebSocket",
                                    http.HTTPStatus.FORBIDDEN)
            return None
        if path.startswith("/api/"):
            return self._api(connection, request, path)
        if path in PAGES and (STATIC / PAGES[path]).is_file():
            response = _file_response(STATIC / PAGES[path])
            if from_query:
                response.headers["Set-Cookie"] = (f"{COOKIES[from_query]}="
                                                  f"{self.tokens[from_query]}; HttpOnly; "
                                                  f"SameSite=Strict; Path=/{self._secure}")
            return response
        if path.startswith("/static/"):
            target = (STATIC / path.removeprefix("/static/")).resolve()
            if STATIC.resolve() in target.parents and target.is_file():
                return _file_response(target)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    @property
    def _secure(self) -> str:
        return "; Secure" if self.config.dashboard.tls_cert else ""

    def _api(self, connection: ServerConnection, request: Request, path: str) -> Response:
        if path == "/api/status":
            return _json(200, self.hub.status())
        if path == "/api/checks":
            query = parse_qs(urlsplit(request.path).query)
            try:
                day = (_dt.date.fromisoformat(query["day"][0]) if query.get("day")
                       else _dt.datetime.now(_dt.timezone.utc).date())
            except ValueError:
                return _json(400, {"error": "day must be YYYY-MM-DD"})
            checks = self.store.list_checks(day=day, person_id=_first(query, "person"),
                                            status=_first(query, "status"))
            return _json(200, {"checks": checks})
        if match := CHECK_PATH.match(path):
            found = self.store.get_check(int(match[1]), with_windows=True)
            return _json(200, {"check": found}) if found else _json(404, {"error": "no such "
                                                                                  "check"})
        if (match := PERSON_PATH.match(path)) and request.method == "DELETE":
            if request.headers.get("X-Wellmon-Confirm") != "delete":
                return self._refuse(connection, request, "delete without confirmation header",
                                    http.HTTPStatus.BAD_REQUEST)
            deleted = self.store.delete_person(match[1])
            log(ROLE, f"deleted a person's data ({deleted} checks) at an admin's request")
            return _json(200, {"deleted_checks": deleted})
        return _json(404, {"error": "not found"})

    # --- WebSocket side --------------------------------------------------------------------

    async def handle(self, connection: ServerConnection) -> None:
        kiosk = urlsplit(connection.request.path).path == "/ws/kiosk"
        client = Client(connection, self.config.dashboard.client_queue)
        if kiosk:
            client.offer(json.dumps(self.checks.hello(self.config.dashboard.retention_days)))
            self.kiosk_clients.add(client)
        else:
            client.offer(self.hub.hello())
            self.hub.clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for message in connection:
                reply = (self.reply_to_kiosk(message) if kiosk
                         else self.reply_to_client(message))
                if reply is None:
                    await connection.close(1008, "unexpected message")
                    break
                if kiosk and self.checks.running and self.check_owner is None:
                    self.check_owner = client
                client.offer(reply)
        except ConnectionClosed:
            pass
        finally:
            self.hub.clients.discard(client)
            self.kiosk_clients.discard(client)
            sender.cancel()
            if self.check_owner is client:
                self.check_owner = None
                self.checks.cancel(time.time(), "the kiosk disconnected during the check")

    def _parse(self, message: str | bytes) -> dict[str, Any] | None:
        """A JSON object from a client, or None (then counted as a fault)."""
        if isinstance(message, bytes) or len(message) > MAX_CLIENT_MESSAGE:
            self.hub.client_faults["bad_frame"] += 1
            return None
        try:
            parsed = json.loads(message)
        except ValueError:
            self.hub.client_faults["bad_json"] += 1
            return None
        if not isinstance(parsed, dict):
            self.hub.client_faults["unknown_type"] += 1
            return None
        return parsed

    def reply_to_client(self, message: str | bytes) -> str | None:
        """The live page only pings; anything else is a fault, counted, and closes that client."""
        parsed = self._parse(message)
        if parsed is None:
            return None
        if parsed.get("type") != "ping":
            self.hub.client_faults["unknown_type"] += 1
            return None
        return json.dumps({"type": "pong", "t": time.time()})

    def reply_to_kiosk(self, message: str | bytes) -> str | None:
        """Check requests; a bad one gets an error the kiosk can show, garbage closes it."""
        parsed = self._parse(message)
        if parsed is None:
            return None
        kind = parsed.get("type")
        if kind == "ping":
            return json.dumps({"type": "pong", "t": time.time()})
        if kind == "check.start":
            try:
                return json.dumps(self.checks.start(parsed, time.time()))
            except CheckError as exc:
                self.hub.client_faults["check_refused"] += 1
                return json.dumps({"type": "error", "reason": str(exc)})
        if kind == "check.cancel":
            self._to_kiosks(self.checks.cancel(time.time()))
            return json.dumps({"type": "pong", "t": time.time()})
        self.hub.client_faults["unknown_type"] += 1
        return None

    def _to_kiosks(self, messages: list[dict[str, Any]]) -> None:
        if self.checks.running is None:
            self.check_owner = None
        for message in messages:
            text = json.dumps(message, allow_nan=False)
            for client in self.kiosk_clients:
                self.hub.dropped_updates += client.offer(text)

    async def _send_loop(self, client: Client) -> None:
        try:
            while True:
                await client.ready.wait()
                client.ready.clear()
                while client.queue:
                    text = client.queue.popleft()
                    client.longest = max(client.longest, len(text))  # ASCII: chars = bytes
                    await client.connection.send(text)
        except ConnectionClosed:
            pass

    # --- ZeroMQ side -----------------------------------------------------------------------

    async def receive_scores(self) -> None:
        context = zmq.asyncio.Context()
        sock = context.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, self.config.wire.recv_hwm * 16)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        for prefix in (b"s.", b"n."):
            sock.setsockopt(zmq.SUBSCRIBE, prefix)
        routes.attach(sock, routes.Endpoint(routes.dashboard_scores(self.config), bind=False),
                      Curve(self.config))
        try:
            while True:
                parts = await sock.recv_multipart()
                self._accept(parts)
        finally:
            sock.close()
            context.term()

    def _accept(self, parts: list[bytes]) -> None:
        if parts and parts[0].startswith(b"n.") and len(parts) == 2:
            try:
                stats = json.loads(parts[1])
            except ValueError:
                self.hub.rejected.add(Rejected("bad_json"))
                return
            if isinstance(stats, dict):
                self.hub.set_node_stats(stats)
            return
        score = decode_score(parts)
        if isinstance(score, Rejected):
            self.hub.rejected.add(score)
            return
        if isinstance(score.get("latency_ms"), dict) and score.get("t_published"):
            score["latency_ms"]["publish_to_dashboard"] = (time.time()
                                                           - score["t_published"]) * 1e3
            if self.metrics is not None:
                self.metrics.score(score["latency_ms"]["publish_to_dashboard"] / 1e3)
        self.hub.add_score(score)
        self._to_kiosks(self.checks.on_score(score, time.time()))

    async def _housekeeping(self, stop: threading.Event) -> None:
        """Fail stalled checks; disconnect clients that stopped reading; apply the retention
        once an hour."""
        last_retention = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.25)
            self._to_kiosks(self.checks.tick(time.time()))
            self._drop_stalled_clients(time.monotonic())
            if time.monotonic() - last_retention > 3600:
                last_retention = time.monotonic()
                self.store.apply_retention(time.time())

    def _drop_stalled_clients(self, now: float) -> None:
        for client in [*self.hub.clients, *self.kiosk_clients]:
            reason = client.fault(now, self.config.dashboard.drop_stalled_after_s)
            if reason is not None:
                self.hub.client_faults[reason] += 1
                peer = client.connection.remote_address
                log(ROLE, f"disconnected {peer[0] if peer else 'a client'}: {reason} "
                          f"({client.buffered} bytes unread)")
                self.hub.clients.discard(client)
                self.kiosk_clients.discard(client)
                client.connection.transport.abort()

    async def run(self, stop: threading.Event) -> None:
        cfg = self.config.dashboard
        tls = _tls_context(cfg.tls_cert, cfg.tls_key)
        served = ""
        if self.config.metrics.enabled:
            from wellmon import metrics

            self.metrics = metrics.DashboardMetrics(self)
            served = metrics.start(self.metrics.registry, self.config.metrics,
                                   self.config.metrics.dashboard_port)
        async with serve(self.handle, cfg.host, cfg.port, process_request=self.process_request,
                         max_size=MAX_CLIENT_MESSAGE, write_limit=WRITE_LIMIT,
                         ping_interval=20, ssl=tls,
                         server_header="wellmon") as server:
            host, port = next(iter(server.sockets)).getsockname()[:2]
            self.url = f"{'https' if tls else 'http'}://{_url_host(host)}:{port}/"
            receiver = asyncio.create_task(self.receive_scores())
            housekeeping = asyncio.create_task(self._housekeeping(stop))
            announce_ready(f"{ROLE}{served} url={self.url}")  # url= last: it is read to the end
            while not stop.is_set():
                await asyncio.sleep(0.1)
                for task in (receiver, housekeeping):
                    if task.done():
                        task.result()
            receiver.cancel()
            housekeeping.cancel()


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


def _first(query: dict[str, list[str]], key: str) -> str | None:
    return query[key][0] if query.get(key) else None


def _json(status: int, body: Any) -> Response:
    return _response(status, json.dumps(body, allow_nan=False).encode(), "application/json")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       *SECURITY_HEADERS])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _file_response(path: Path) -> Response:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return _response(200, path.read_bytes(), content_type)


def serve_dashboard(config: Config, tokens: dict[str, str], stop: threading.Event) -> int:
    store = open_store(config.dashboard.store,
                       keep_series_days=config.dashboard.retention_days)
    try:
        asyncio.run(Dashboard(config, tokens, store).run(stop))
    finally:
        store.close()
    return 0
