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
import errno
import http
import json
import mimetypes
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from wellmon.config import Config, ConfigError
from wellmon.dashboard.auth import COOKIES, ROLES, SECURE_COOKIE_PREFIX, Sessions, role_of
from wellmon.dashboard.checks import ID_RULE, KioskChecks, valid_person
from wellmon.dashboard.fanout import WRITE_LIMIT, Hub
from wellmon.dashboard.feed import ScoreFeed
from wellmon.dashboard.kiosk_socket import KioskSocket
from wellmon.dashboard.page_sockets import MAX_CLIENT_MESSAGE, PageSockets
from wellmon.dashboard.person_secrets import PersonSecrets
from wellmon.dashboard.store import STATUSES, Store, StoreError, open_store
from wellmon.streamer.lifecycle import announce_ready, log
from wellmon.streamer.wire import ports, routes

ROLE = "dashboard"
STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/index.html": "index.html", "/kiosk": "kiosk.html",
         "/operator": "operator.html"}
ALLOWED = {
    "/": {"viewer", "admin"}, "/index.html": {"viewer", "admin"}, "/ws": {"viewer", "admin"},
    "/api/status": {"viewer", "admin"}, "/kiosk": {"kiosk", "admin"},
    "/ws/kiosk": {"kiosk", "admin"}, "/operator": {"admin"},
    "/api/session": {"viewer", "kiosk", "admin"},
}
"""Path -> roles that may open it; ``/api/checks`` and ``/api/persons`` are admin only and
``/static/`` assets are open to every role (they hold no data)."""
CHECK_PATH = re.compile(r"/api/checks/([0-9]{1,18})")  # fullmatch; a longer id is no check
PERSON_ACTIONS = {"": ("GET", "DELETE"), "enrolment": ("POST",), "secret": ("DELETE",)}
"""/api/persons/<person>[/<action>] -> its methods (docs/dashboard-api.md, operator)."""
SECURITY_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'self'; connect-src 'self'; "
                                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'; object-src 'none'"),
]
"""Sent with every response (process_response), refusals and the handshake included."""


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
        self.tokens = tokens
        cfg = config.dashboard
        self.hub = Hub(cfg.history_s, config.node.hop_s, cfg.client_queue)
        self.store = store
        interrupted = store.mark_interrupted()
        if interrupted:
            log(ROLE, f"{interrupted} check(s) interrupted by the last stop marked incomplete")
        self.checks = KioskChecks(store, cfg.kiosk_name, cfg.kiosk_stream, cfg.check_s)
        self.secrets = PersonSecrets(store)
        self.kiosk = KioskSocket(self.checks, self.secrets, cfg.retention_days)
        self.sockets = PageSockets(cfg, self.hub, self.kiosk)
        self.sessions = Sessions(tokens, cfg.session_hours * 3600)
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
            refused=_summed(self.hub.refused, self.sockets.refused),
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

    # --- HTTP side -------------------------------------------------------------------------

    def _roles(self, request: Request) -> set[str]:
        """Roles the request holds: a program's ``Authorization: Bearer TOKEN``, a browser's
        session cookies."""
        roles = set()
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and (role := role_of(self.tokens, offered.strip())):
            roles.add(role)
        cookie = _cookies(request)
        now = time.time()
        for role in ROLES:
            value = cookie.get(self._cookie_name(role))
            if value is not None and self.sessions.valid(role, value, now):
                roles.add(role)
        return roles

    def _cookie_name(self, role: str) -> str:
        return (SECURE_COOKIE_PREFIX if self.config.dashboard.tls_cert else "") + COOKIES[role]

    def _session_cookie(self, role: str) -> str:
        """A fresh Set-Cookie value for ``role``: HttpOnly, SameSite=Strict, expiring."""
        max_age = int(self.sessions.session_s)
        return (f"{self._cookie_name(role)}={self.sessions.issue(role, time.time())}; "
                f"Max-Age={max_age}; HttpOnly; SameSite=Strict; Path=/{self._secure}")

    def _sign_in(self, connection: ServerConnection, request: Request, path: str,
                 roles: set[str]) -> Response:
        """Trade a one-time ``?code=`` for a session cookie and redirect to the bare URL, so
        the address the browser keeps in its history opens nothing."""
        query = parse_qs(urlsplit(request.path).query)
        code = query["code"][0] if query.get("code") else ""
        allowed = ALLOWED.get(path, set())
        role = self.sessions.redeem(code, time.time(), frozenset(allowed))
        if role is None and not roles & allowed:
            return self._refuse(connection, request,
                                "this sign-in link has expired or was already used, or is "
                                f"for another page: run `wellmon login {_role_for(path)}` "
                                "for a new one",
                                http.HTTPStatus.UNAUTHORIZED)
        response = connection.respond(http.HTTPStatus.SEE_OTHER, "signed in\n")
        response.headers["Location"] = path
        if role is not None:
            log(ROLE, f"signed in a {role} browser from {connection.remote_address[0]}")
            response.headers["Set-Cookie"] = self._session_cookie(role)
        return response

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
        query = parse_qs(urlsplit(request.path).query)
        if "token" in query:
            return self._refuse(connection, request,
                                "a token in the address is not accepted: sign in with a link "
                                "from `wellmon login ROLE`, or send Authorization: Bearer",
                                http.HTTPStatus.UNAUTHORIZED)
        roles = self._roles(request)
        if "code" in query and path in PAGES:
            return self._sign_in(connection, request, path, roles)
        if not roles:
            offered = "Authorization" in request.headers or any(
                name in _cookies(request) for name in map(self._cookie_name, ROLES))
            reason = ("wrong token or expired session" if offered else "not signed in")
            return self._refuse(connection, request,
                                f"{reason}: open a sign-in link from `wellmon login "
                                f"{_role_for(path)}`", http.HTTPStatus.UNAUTHORIZED)
        allowed = ALLOWED.get(path, {"admin"} if path.startswith("/api/") else None)
        if path.startswith("/static/"):
            allowed = set(COOKIES)
        if allowed is None:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        if not roles & allowed:
            return self._refuse(connection, request,
                                f"the {'/'.join(sorted(roles))} token may not open this",
                                http.HTTPStatus.FORBIDDEN)
        if request.method not in ("GET", "DELETE", "POST") or (
                request.method != "GET" and not path.startswith("/api/persons/")):
            return self._refuse(connection, request, f"method {request.method} not allowed",
                                http.HTTPStatus.METHOD_NOT_ALLOWED)
        if path.startswith("/ws"):
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("Host"):
                return self._refuse(connection, request, "cross-origin WebSocket",
                                    http.HTTPStatus.FORBIDDEN)
            if reason := self.sockets.admit(connection, path, roles):
                return self._refuse(connection, request, reason,
                                    http.HTTPStatus.SERVICE_UNAVAILABLE)
            return None
        if path == "/api/session":
            response = connection.respond(http.HTTPStatus.NO_CONTENT, "")
            for role in roles & {r for r in ROLES if self._cookie_name(r) in _cookies(request)}:
                response.headers["Set-Cookie"] = self._session_cookie(role)
            return response
        if path.startswith("/api/"):
            return self._api(connection, request, path)
        if path in PAGES and (STATIC / PAGES[path]).is_file():
            response = _file_response(STATIC / PAGES[path])
            held = roles & ALLOWED[path] & {r for r in ROLES
                                            if self._cookie_name(r) in _cookies(request)}
            for role in sorted(held)[:1]:  # renew the session the page is open with
                response.headers["Set-Cookie"] = self._session_cookie(role)
            return response
        if path.startswith("/static/"):
            target = (STATIC / path.removeprefix("/static/")).resolve()
            if STATIC.resolve() in target.parents and target.is_file():
                return _file_response(target)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    @property
    def _secure(self) -> str:
        return "; Secure" if self.config.dashboard.tls_cert else ""

    def process_response(self, connection: ServerConnection, request: Request,
                         response: Response) -> None:
        """Every answer, refusals and the WebSocket handshake included, carries the security
        headers: no framing, no sniffing, no caching, no referrer; HSTS under TLS."""
        for name, value in SECURITY_HEADERS:
            if name not in response.headers:
                response.headers[name] = value
        if self.config.dashboard.tls_cert:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"

    def _api(self, connection: ServerConnection, request: Request, path: str) -> Response:
        """The JSON API. Input it cannot use gets 400 or 404 with ``{"error": …}``, never a
        500; a store that fails gets 503."""
        try:
            return self._api_answer(connection, request, path)
        except StoreError as exc:
            log(ROLE, f"the check store failed {request.method} {path}: {exc}")
            return _json(503, {"error": "the check store is not available"})

    def _api_answer(self, connection: ServerConnection, request: Request,
                    path: str) -> Response:
        if path == "/api/status":
            return _json(200, self.status())
        if path == "/api/checks":
            query = parse_qs(urlsplit(request.path).query)
            try:
                day = (_dt.date.fromisoformat(query["day"][0]) if query.get("day")
                       else _dt.datetime.now(_dt.timezone.utc).date())
            except ValueError:
                return _json(400, {"error": "day must be YYYY-MM-DD"})
            person, status = _first(query, "person"), _first(query, "status")
            if status is not None and status not in STATUSES:
                return _json(400, {"error": f"status must be one of {', '.join(STATUSES)}"})
            if person is not None and not valid_person(person):
                return _json(400, {"error": f"person: {ID_RULE}"})
            checks = self.store.list_checks(day=day, person_id=person, status=status)
            return _json(200, {"checks": checks})
        if match := CHECK_PATH.fullmatch(path):
            found = self.store.get_check(int(match[1]), with_windows=True)
            return _json(200, {"check": found}) if found else _json(404, {"error": "no such "
                                                                                  "check"})
        if path.startswith("/api/persons/"):
            raw, _, action = path.removeprefix("/api/persons/").partition("/")
            person = unquote(raw)  # the page sends encodeURIComponent(id); %2E is "."
            if not valid_person(person) or action not in PERSON_ACTIONS:
                return _json(404, {"error": "no such person path"})
            if request.method not in PERSON_ACTIONS[action]:
                return _json(405, {"error": f"{request.method} not allowed here"})
            return self._person_api(connection, request, person, action)
        return _json(404, {"error": "not found"})

    def _person_api(self, connection: ServerConnection, request: Request, person: str,
                    action: str) -> Response:
        """A person's secret status, deletion, enrolment code and secret reset (admin).
        Changes need ``X-Wellmon-Confirm`` (a header a cross-site form cannot send)."""
        confirm = request.headers.get("X-Wellmon-Confirm")
        if request.method == "GET":
            return _json(200, self.store.person_status(person, time.time()))
        if action == "":
            if confirm != "delete":
                return self._refuse(connection, request, "delete without confirmation header",
                                    http.HTTPStatus.BAD_REQUEST)
            deleted = self.store.delete_person(person)
            log(ROLE, f"deleted a person's data ({deleted} checks) at an admin's request")
            return _json(200, {"deleted_checks": deleted})
        if action == "enrolment":
            if confirm != "enrol":
                return _json(400, {"error": "send X-Wellmon-Confirm: enrol"})
            issued = self.secrets.issue_code(person, time.time())
            log(ROLE, "issued an enrolment code at an admin's request")
            return _json(200, issued)
        if confirm != "reset":
            return _json(400, {"error": "send X-Wellmon-Confirm: reset"})
        was_set = self.secrets.reset(person)
        log(ROLE, "reset a person's secret at an admin's request")
        return _json(200, {"reset": True, "secret_was_set": was_set})

    async def _housekeeping(self, stop: threading.Event) -> None:
        """Fail stalled checks; disconnect clients that stopped reading; apply the retention
        once an hour."""
        last_retention = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.25)
            self.kiosk.deliver(self.checks.tick(time.time()))
            self.sockets.drop_stalled_clients(time.monotonic())
            if time.monotonic() - last_retention > 3600:
                last_retention = time.monotonic()
                self.store.apply_retention(time.time())

    async def run(self, stop: threading.Event,
                  observe: Callable[[Dashboard], str] | None = None) -> None:
        """Serve until ``stop``; ``observe`` as in `serve_dashboard`."""
        cfg = self.config.dashboard
        tls = _tls_context(cfg.tls_cert, cfg.tls_key)
        served = observe(self) if observe is not None else ""
        server = serve(self.sockets.handle, cfg.host, cfg.port,
                       process_request=self.process_request,
                       process_response=self.process_response,
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


def _cookies(request: Request) -> dict[str, str]:
    """The request's cookies by name; a malformed Cookie header counts as none."""
    try:
        jar = SimpleCookie(request.headers.get("Cookie", ""))
    except Exception:  # http.cookies raises CookieError and others on garbage
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _role_for(path: str) -> str:
    """The role whose sign-in link opens ``path`` (for the hint in a refusal)."""
    if path.startswith(("/kiosk", "/ws/kiosk")):
        return "kiosk"
    if path.startswith(("/operator", "/api/")) and path != "/api/status":
        return "admin"
    return "viewer"


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


def serve_dashboard(config: Config, tokens: dict[str, str], stop: threading.Event,
                    observe: Callable[[Dashboard], str] | None = None) -> int:
    """Run the dashboard until ``stop``; ``observe`` (the metrics endpoint, when the command
    line turns it on) gets it before it listens and returns what its READY line adds."""
    from wellmon.streamer.wire import (
        exposure,  # refuse plain HTTP, clear links, open metrics off-host
    )

    exposure.check(config, [routes.dashboard_scores(config)], dashboard=True)
    store = open_store(config.dashboard.store,
                       keep_series_days=config.dashboard.retention_days)
    try:
        asyncio.run(Dashboard(config, tokens, store).run(stop, observe))
    finally:
        store.close()
    return 0
