"""The dashboard: one asyncio server for the page, its assets and the WebSocket.

Score messages arrive from the inference node over ZeroMQ and fan out to the
browsers. Each browser has a bounded queue: when it cannot keep up, its
oldest updates are dropped, so a slow client never slows the node or the
other clients. A new client first gets the recent history. Everything but
`/healthz` needs the token (query `?token=` once, then a cookie); the
WebSocket also checks that the page's Origin is this server.
"""

from __future__ import annotations

import asyncio
import http
import json
import mimetypes
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

from dashboard.auth import COOKIE, token_matches
from streamer.lifecycle import announce_ready, log
from streamer.protocol import Rejected, RejectionCounter, decode_score
from wellmon.config import Config

ROLE = "dashboard"
STATIC = Path(__file__).parent / "static"
MAX_CLIENT_MESSAGE = 4096
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

    def offer(self, text: str) -> None:
        if len(self.queue) >= self.capacity:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(text)
        self.ready.set()


class Hub:
    """Recent history per stream and the set of connected clients."""

    def __init__(self, history_s: float, hop_s: float, client_queue: int) -> None:
        self.history_len = max(1, int(history_s / hop_s))
        self.client_queue = client_queue
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self.clients: set[Client] = set()
        self.node_stats: dict[str, Any] = {}
        self.rejected = RejectionCounter()
        self.client_faults: Counter = Counter()
        self.refused: Counter = Counter()

    def add_score(self, score: dict[str, Any]) -> None:
        self.history.setdefault(score["stream"], deque(maxlen=self.history_len)).append(score)
        self.broadcast({"type": "score", "score": score})

    def set_node_stats(self, stats: dict[str, Any]) -> None:
        self.node_stats = stats
        self.broadcast({"type": "node", "node": stats})

    def broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, allow_nan=False)
        for client in self.clients:
            client.offer(text)

    def hello(self) -> str:
        scores = [s for h in self.history.values() for s in h]
        scores.sort(key=lambda s: s["t_end"])
        return json.dumps({"type": "history", "scores": scores, "node": self.node_stats})

    def status(self) -> dict[str, Any]:
        return {
            "streams": {name: {"state": h[-1]["state"], "t_end": h[-1]["t_end"]}
                        for name, h in self.history.items() if h},
            "node": self.node_stats,
            "clients": len(self.clients),
            "rejected_scores": dict(self.rejected.counts),
            "client_faults": dict(self.client_faults),
            "refused": dict(self.refused),
            "dropped_updates": sum(c.dropped for c in self.clients),
        }


class Dashboard:
    def __init__(self, config: Config, token: str) -> None:
        self.config = config
        self.token = token
        cfg = config.dashboard
        self.hub = Hub(cfg.history_s, config.node.hop_s, cfg.client_queue)
        self.url = ""

    # --- HTTP side -------------------------------------------------------------------------

    def _offered_token(self, request: Request) -> str | None:
        query = parse_qs(urlsplit(request.path).query)
        if query.get("token"):
            return query["token"][0]
        cookie = SimpleCookie(request.headers.get("Cookie", ""))
        return cookie[COOKIE].value if COOKIE in cookie else None

    def _refuse(self, connection: ServerConnection, request: Request, reason: str,
                status: http.HTTPStatus) -> Response:
        self.hub.refused[reason] += 1
        path = urlsplit(request.path).path
        log(ROLE, f"refused {path} from {connection.remote_address[0]}: {reason}")
        return connection.respond(status, f"wellmon: {reason}\n")

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        offered = self._offered_token(request)
        if not token_matches(self.token, offered):
            reason = "no token" if offered is None else "wrong token"
            return self._refuse(connection, request,
                                f"{reason}: open the URL that `wellmon run` printed",
                                http.HTTPStatus.UNAUTHORIZED)
        if path == "/ws":
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("Host"):
                return self._refuse(connection, request, "cross-origin WebSocket",
                                    http.HTTPStatus.FORBIDDEN)
            return None
        if path == "/api/status":
            return _response(200, json.dumps(self.hub.status()).encode(), "application/json")
        if path in ("/", "/index.html"):
            response = _file_response(STATIC / "index.html")
            response.headers["Set-Cookie"] = (f"{COOKIE}={self.token}; HttpOnly; "
                                              "SameSite=Strict; Path=/")
            return response
        if path.startswith("/static/"):
            target = (STATIC / path.removeprefix("/static/")).resolve()
            if STATIC.resolve() in target.parents and target.is_file():
                return _file_response(target)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    # --- WebSocket side --------------------------------------------------------------------

    async def handle(self, connection: ServerConnection) -> None:
        client = Client(connection, self.config.dashboard.client_queue)
        client.offer(self.hub.hello())
        self.hub.clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for message in connection:
                reply = self.reply_to_client(message)
                if reply is None:
                    await connection.close(1008, "unexpected message")
                    break
                client.offer(reply)
        except ConnectionClosed:
            pass
        finally:
            self.hub.clients.discard(client)
            sender.cancel()

    def reply_to_client(self, message: str | bytes) -> str | None:
        """The page only pings; anything else is a fault, counted, and closes that client."""
        if isinstance(message, bytes) or len(message) > MAX_CLIENT_MESSAGE:
            self.hub.client_faults["bad_frame"] += 1
            return None
        try:
            parsed = json.loads(message)
        except ValueError:
            self.hub.client_faults["bad_json"] += 1
            return None
        if not isinstance(parsed, dict) or parsed.get("type") != "ping":
            self.hub.client_faults["unknown_type"] += 1
            return None
        return json.dumps({"type": "pong", "t": time.time()})

    async def _send_loop(self, client: Client) -> None:
        try:
            while True:
                await client.ready.wait()
                client.ready.clear()
                while client.queue:
                    await client.connection.send(client.queue.popleft())
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
        sock.connect(self.config.node.output)
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
        self.hub.add_score(score)

    async def run(self, stop: threading.Event) -> None:
        cfg = self.config.dashboard
        async with serve(self.handle, cfg.host, cfg.port, process_request=self.process_request,
                         max_size=MAX_CLIENT_MESSAGE, ping_interval=20,
                         server_header="wellmon") as server:
            host, port = next(iter(server.sockets)).getsockname()[:2]
            self.url = f"http://{_url_host(host)}:{port}/"
            receiver = asyncio.create_task(self.receive_scores())
            announce_ready(f"{ROLE} url={self.url}")
            while not stop.is_set():
                await asyncio.sleep(0.1)
                if receiver.done():
                    receiver.result()
            receiver.cancel()


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


def serve_dashboard(config: Config, token: str, stop: threading.Event) -> int:
    asyncio.run(Dashboard(config, token).run(stop))
    return 0
