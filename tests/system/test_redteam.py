"""The dashboard as an attacker sees it: every credential against every path and method,
every WebSocket message type on both sockets, and input fuzzed into the API.

One real dashboard process on a free port. What a person's data is behind (the kiosk's
check flow with a camera, PINs, locks) is tested on a fed dashboard in
tests/system/test_kiosk_security.py; this file walks the whole surface and checks the rules that
hold everywhere: the role table of docs/dashboard-api.md, the security headers on every
answer, no 500 and no traceback for any input, and no credential in the log.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote, urlsplit

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, TOKEN, sign_in
from wellmon.dashboard.auth import login_code
from wellmon.harness import ready_url

ROLES = {"viewer": TOKEN, "kiosk": KIOSK_TOKEN, "admin": ADMIN_TOKEN}
PAGES_OF = {"/": {"viewer", "admin"}, "/index.html": {"viewer", "admin"},
            "/kiosk": {"kiosk", "admin"}, "/operator": {"admin"}}
GET_PATHS = {**PAGES_OF, "/api/status": {"viewer", "admin"},
             "/api/session": {"viewer", "kiosk", "admin"}, "/api/checks": {"admin"},
             "/api/checks/1": {"admin"}, "/static/app.js": {"viewer", "kiosk", "admin"},
             "/static/live/stream.js": {"viewer", "kiosk", "admin"}}
"""Path -> the roles that may GET it (docs/dashboard-api.md)."""
PERSON_METHODS = {"/api/persons/p1": {"GET", "DELETE"}, "/api/persons/p1/enrolment": {"POST"},
                  "/api/persons/p1/secret": {"DELETE"}}
"""A person's paths (admin only) -> their methods; every change needs its confirmation
header, so without one it is a 400."""
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS")
MUST_HAVE = {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
             "cache-control": "no-store", "referrer-policy": "no-referrer"}


def request(base: str, method: str, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    """One raw request (the path is sent exactly as given, dots and all)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def credentials(base: str) -> dict[str, dict[str, str]]:
    """Every way of knocking, by name: nothing, forged things, and each role by header and
    by browser session."""
    knocks: dict[str, dict[str, str]] = {
        "none": {}, "wrong bearer": {"Authorization": "Bearer not-a-token-of-ours"},
        "basic auth": {"Authorization": f"Basic {TOKEN}"},
        "token as cookie": {"Cookie": f"wellmon_admin={ADMIN_TOKEN}"},
        "forged session": {"Cookie": "wellmon_admin=abc.99999999999.0123456789abcdef"},
        "garbage cookie": {"Cookie": '";;=;wellmon_admin=%%;wellmon_viewer="\\'},
    }
    for role, token in ROLES.items():
        knocks[f"{role} bearer"] = {"Authorization": f"Bearer {token}"}
        knocks[f"{role} session"] = {"Cookie": sign_in(base, role, token)}
    return knocks


def role_of_knock(name: str) -> str | None:
    first = name.split()[0]
    return first if first in ROLES and name.split()[1] in ("bearer", "session") else None


def expected_status(role: str | None, method: str, path: str) -> set[int]:
    """What the table in docs/dashboard-api.md says this knock gets."""
    if role is None:
        return {401}
    if path in PERSON_METHODS:
        if role != "admin":
            return {403}
        if method not in PERSON_METHODS[path]:
            return {405}
        return {200} if method == "GET" else {400}
    if role not in GET_PATHS[path]:
        return {403}
    if method != "GET":
        return {405}
    return {200, 204, 404}  # 204: /api/session; 404: no check 1 yet


@pytest.fixture()
def dashboard(processes):
    ready = processes.start("dashboard", "dashboard")
    yield ready_url(ready.ready_line)
    processes.stop_all()


def test_every_knock_on_every_path_and_method_gets_what_the_role_table_says(
        dashboard, processes) -> None:
    knocks = credentials(dashboard)
    paths = [*GET_PATHS, *PERSON_METHODS]
    seen: dict[int, int] = {}
    for name, headers in knocks.items():
        role = role_of_knock(name)
        for path in paths:
            for method in METHODS:
                status, answer, body = request(dashboard, method, path, headers)
                seen[status] = seen.get(status, 0) + 1
                assert status in expected_status(role, method, path), (name, method, path,
                                                                      status, body[:200])
                for header, value in MUST_HAVE.items():
                    assert answer.get(header) == value, (name, method, path, header)
                assert "frame-ancestors 'none'" in answer["content-security-policy"]
                assert b"Traceback" not in body
    assert seen.get(500, 0) == 0 and {200, 401, 403, 405} <= set(seen)
    processes.stop_all()
    log = (processes.logs / "dashboard.log").read_text()
    for secret in (TOKEN, KIOSK_TOKEN, ADMIN_TOKEN,
                   *(h["Cookie"].split("=", 1)[1] for n, h in knocks.items()
                     if n.endswith("session"))):
        assert secret not in log
    assert "Traceback" not in log


def test_writes_need_admin_and_their_confirmation_header(dashboard) -> None:
    confirm = {("POST", "/api/persons/p1/enrolment"): "enrol",
               ("DELETE", "/api/persons/p1/secret"): "reset",
               ("DELETE", "/api/persons/p1"): "delete"}
    for (method, path), word in confirm.items():
        for role, token in ROLES.items():
            bearer = {"Authorization": f"Bearer {token}"}
            wrong = request(dashboard, method, path, {**bearer, "X-Wellmon-Confirm": "yes"})
            right = request(dashboard, method, path, {**bearer, "X-Wellmon-Confirm": word})
            if role != "admin":
                assert wrong[0] == right[0] == 403, (role, method, path)
            else:
                assert wrong[0] == 400 and right[0] == 200, (method, path, right[2])
    # the enrolment code is shown once, to the admin, and the kiosk can never list people
    issued = json.loads(request(dashboard, "POST", "/api/persons/p2/enrolment",
                                {"Authorization": f"Bearer {ADMIN_TOKEN}",
                                 "X-Wellmon-Confirm": "enrol"})[2])
    code = json.dumps(issued)
    for path in ("/api/checks", "/api/persons/p2", "/api/status"):
        status, _, body = request(dashboard, "GET", path,
                                  {"Authorization": f"Bearer {KIOSK_TOKEN}"})
        assert status == 403 and b"p2" not in body and code.encode() not in body


def test_paths_an_attacker_tries_are_not_found_and_never_an_error(dashboard) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    tricks = ["/static/../dashboard/server.py", "/static/%2e%2e/server.py",
              "/static/..%2fserver.py", "/static//etc/passwd", "/static/", "/static/live/",
              "/api/checks/99999999999999999999999999", "/api/checks/-1", "/api/checks/1.5",
              "/api/checks/%31", "/api/persons/", "/api/persons/a/b/c",
              "/api/persons/alice%0a", "/api/persons/" + "x" * 65, "/api/persons/%ff%fe",
              "/api/persons/..%2f..%2fetc", "/ws/../operator", "/operator/", "//operator",
              "/" + "a" * 4000, "/index.html?code=" + "A" * 300]
    for path in tricks:
        status, answer, body = request(dashboard, "GET", path, admin)
        assert status in (200, 303, 400, 401, 404), (path, status, body[:200])
        assert answer.get("x-frame-options") == "DENY", path
        if path.startswith("/static/"):
            assert b"def " not in body and b"root:" not in body, path
    for query in ("status=bogus", "status=", "day=2026-13-01", "day=" + "9" * 40,
                  "person=alice%0a", "person=" + "x" * 200, "person=%00", "day=2026-11-22&"
                  "day=2026-11-23", "status=complete&person=%E2%98%83", "x=" + "%" * 100):
        status, _, body = request(dashboard, "GET", f"/api/checks?{query}", admin)
        assert status in (200, 400), (query, status, body[:200])
        assert json.loads(body)  # a JSON answer either way, never a traceback


def test_sign_in_codes_cannot_be_forged_replayed_or_moved(dashboard) -> None:
    good = login_code("admin", ADMIN_TOKEN)
    nonce, made, mac = good.split(".")
    forged = [f"{nonce}.{made}.{'0' * 32}", f"{nonce}.{int(made) + 1}.{mac}",
              f"x{nonce}.{made}.{mac}", login_code("admin", TOKEN), "", ".", "..", "a.b.c",
              f"{nonce}.{made}", f"{nonce}.{'9' * 40}.{mac}", quote("é.1.2")]
    for code in forged:
        status, answer, _ = request(dashboard, "GET", f"/operator?code={code}")
        assert status == 401 and "set-cookie" not in answer, code
    status, answer, _ = request(dashboard, "GET", f"/operator?code={good}")
    assert status == 303 and answer["location"] == "/operator"
    assert request(dashboard, "GET", f"/operator?code={good}")[0] == 401  # once only
    kiosk = login_code("kiosk", KIOSK_TOKEN)
    assert request(dashboard, "GET", f"/operator?code={kiosk}")[0] == 401  # not its page...
    assert request(dashboard, "GET", f"/kiosk?code={kiosk}")[0] == 303  # ...and not spent


SOCKETS = {"/ws": {"viewer", "admin"}, "/ws/kiosk": {"kiosk", "admin"}}
MESSAGES = {
    "ping": ('{"type": "ping"}', {"/ws": "pong", "/ws/kiosk": "pong"}),
    "check.start": ('{"type": "check.start", "person": "p1", "consent": true}',
                    {"/ws": 1008, "/ws/kiosk": "error"}),
    "check.start with a PIN": ('{"type": "check.start", "person": "p1", "consent": true, '
                               '"secret": "482913"}', {"/ws": 1008, "/ws/kiosk": "error"}),
    "check.cancel": ('{"type": "check.cancel"}', {"/ws": 1008, "/ws/kiosk": "pong"}),
    "enrol": ('{"type": "enrol", "person": "p1", "code": "1234 5678 9012", '
              '"secret": "482913"}', {"/ws": 1008, "/ws/kiosk": "error"}),
    "unknown type": ('{"type": "history.more", "before": 0}', {"/ws": 1008, "/ws/kiosk": 1008}),
    "no type": ('{"person": "p1"}', {"/ws": 1008, "/ws/kiosk": 1008}),
    "not an object": ('["ping"]', {"/ws": 1008, "/ws/kiosk": 1008}),
    "not JSON": ("ping", {"/ws": 1007, "/ws/kiosk": 1007}),
    "too deep": ("[" * 2000, {"/ws": 1007, "/ws/kiosk": 1007}),
    "binary": (b"\x00\x01\x02", {"/ws": 1008, "/ws/kiosk": 1008}),
    "too big": ('{"type": "ping", "pad": "' + "a" * 5000 + '"}',
                {"/ws": 1009, "/ws/kiosk": 1009}),
}
"""Message -> (what is sent, per socket: the reply's type, or the close code)."""


def _reply_or_close(ws, first_type: str) -> str | int:
    """The type of the first reply other than the socket's own opening message(s), or the
    close code if the server closed instead."""
    try:
        while True:
            message = json.loads(ws.recv(timeout=15))
            if message["type"] not in (first_type, "kiosk.preview"):
                return message["type"]
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1


def test_every_socket_message_type_from_every_role(dashboard, processes) -> None:
    ws_base = dashboard.replace("http://", "ws://").rstrip("/")
    for path, allowed in SOCKETS.items():
        for role, token in ROLES.items():
            headers = {"Authorization": f"Bearer {token}"}
            if role not in allowed:
                with pytest.raises(InvalidStatus) as refused:
                    connect(ws_base + path, additional_headers=headers, open_timeout=10)
                assert refused.value.response.status_code == 403
                continue
            for name, (sent, expected) in MESSAGES.items():
                with connect(ws_base + path, additional_headers=headers, open_timeout=10,
                             max_size=None) as ws:
                    first = json.loads(ws.recv(timeout=10))["type"]
                    assert first == ("kiosk.hello" if path == "/ws/kiosk" else "history")
                    ws.send(sent)
                    got = _reply_or_close(ws, first)
                    assert got == expected[path], (path, role, name, got)
                    assert got != 1011
    for bad in ({}, {"Authorization": "Bearer nope"}, {"Origin": "http://evil.example"}):
        for path in SOCKETS:
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_base + path, additional_headers=bad, open_timeout=10)
            assert refused.value.response.status_code in (401, 403)
    processes.stop_all()
    log = (processes.logs / "dashboard.log").read_text()
    assert "Traceback" not in log and "482913" not in log
