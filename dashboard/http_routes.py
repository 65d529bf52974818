"""Every HTTP request the dashboard gets, before anything is served: who holds which role, and
what each path answers.

Three roles (viewer, kiosk, admin) have their own tokens (dashboard/auth.py;
docs/dashboard-api.md lists what each may open); `/healthz` is open. A browser trades a
one-time sign-in link for a session cookie; a program sends ``Authorization: Bearer``; a
token in the address is refused. WebSockets also check that the page's Origin is this
server, and are admitted by dashboard/page_sockets.py. The pages and their assets are
served from ``static/``; ``/api/`` goes to dashboard/rest_api.py. Every answer carries the
security headers (dashboard/responses.py), and HSTS under TLS.
"""

from __future__ import annotations

import http
import time
from collections import Counter
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from wellmon.config import DashboardConfig
from wellmon.dashboard.auth import COOKIES, ROLES, SECURE_COOKIE_PREFIX, Sessions, role_of
from wellmon.dashboard.page_sockets import PageSockets
from wellmon.dashboard.responses import SECURITY_HEADERS, file_response
from wellmon.dashboard.rest_api import STREAM_REPORT_PATH, Refusal, RestApi
from wellmon.streamer.lifecycle import log

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
"""Path -> roles that may open it; ``/api/checks`` and ``/api/persons`` are admin only,
``/api/streams/<stream>/report`` is for viewers and admins (a viewer's has no kiosk check
in it) and ``/static/`` assets are open to every role (they hold no data)."""


class HttpRoutes:
    """``process_request`` and ``process_response`` of the dashboard's server; counts what
    it refuses in ``refused``, by reason."""

    def __init__(self, cfg: DashboardConfig, tokens: dict[str, str], sessions: Sessions,
                 api: RestApi, sockets: PageSockets) -> None:
        self.cfg = cfg
        self.tokens = tokens
        self.sessions = sessions
        self.api = api
        self.sockets = sockets
        self.refused: Counter = Counter()

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
        return (SECURE_COOKIE_PREFIX if self.cfg.tls_cert else "") + COOKIES[role]

    def _session_cookie(self, role: str) -> str:
        """A fresh Set-Cookie value for ``role``: HttpOnly, SameSite=Strict, expiring."""
        max_age = int(self.sessions.session_s)
        return (f"{self._cookie_name(role)}={self.sessions.issue(role, time.time())}; "
                f"Max-Age={max_age}; HttpOnly; SameSite=Strict; Path=/{self._secure}")

    @property
    def _secure(self) -> str:
        return "; Secure" if self.cfg.tls_cert else ""

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
        self.refused[reason] += 1
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
        if STREAM_REPORT_PATH.fullmatch(path):
            allowed = {"viewer", "admin"}
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
        if match := STREAM_REPORT_PATH.fullmatch(path):
            return self.api.stream_report(unquote(match[1]), sees_private="admin" in roles)
        if path.startswith("/api/"):
            try:
                return self.api.answer(request, path, connection.remote_address[0])
            except Refusal as refusal:
                return self._refuse(connection, request, refusal.reason, refusal.status)
        if path in PAGES and (STATIC / PAGES[path]).is_file():
            response = file_response(STATIC / PAGES[path])
            held = roles & ALLOWED[path] & {r for r in ROLES
                                            if self._cookie_name(r) in _cookies(request)}
            for role in sorted(held)[:1]:  # renew the session the page is open with
                response.headers["Set-Cookie"] = self._session_cookie(role)
            return response
        if path.startswith("/static/"):
            target = (STATIC / path.removeprefix("/static/")).resolve()
            if STATIC.resolve() in target.parents and target.is_file():
                return file_response(target)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    def process_response(self, connection: ServerConnection, request: Request,
                         response: Response) -> None:
        """Every answer, refusals and the WebSocket handshake included, carries the security
        headers: no framing, no sniffing, no caching, no referrer; HSTS under TLS."""
        for name, value in SECURITY_HEADERS:
            if name not in response.headers:
                response.headers[name] = value
        if self.cfg.tls_cert:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"


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
