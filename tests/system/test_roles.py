"""Roles: each token (a program's Bearer header) and each role's session cookie (a browser's,
from a sign-in link) opens its own pages and sockets and is refused elsewhere; TLS works."""

from __future__ import annotations

import re
import ssl
import time
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, TOKEN, http, self_signed_cert, sign_in
from wellmon.dashboard.auth import login_code
from wellmon.harness import StartFailed, ready_url
from wellmon.live_reader import bearer

TOKENS = {"viewer": TOKEN, "kiosk": KIOSK_TOKEN, "admin": ADMIN_TOKEN}
HTTP_PATHS = {
    "/": {"viewer", "admin"},
    "/kiosk": {"kiosk", "admin"},
    "/operator": {"admin"},
    "/api/status": {"viewer", "admin"},
    "/api/checks": {"admin"},
    "/api/checks/1": {"admin"},
    "/api/checks/1/report": {"admin"},
    "/api/streams/cam/report": {"viewer", "admin"},
    "/api/session": {"viewer", "kiosk", "admin"},
}
WS_PATHS = {"ws": {"viewer", "admin"}, "ws/kiosk": {"kiosk", "admin"}}


def base_url(dashboard) -> str:
    return ready_url(dashboard.ready_line)


def http_status(url: str, headers: dict[str, str] | None = None, method: str = "GET",
                context: ssl.SSLContext | None = None) -> int:
    return http(url, headers, method, context)[0]


def test_each_token_opens_only_what_its_role_may(processes) -> None:
    dashboard = processes.start("dashboard", "dashboard")
    url = base_url(dashboard)
    cookies = {role: sign_in(url, role, token) for role, token in TOKENS.items()}
    for path, allowed in HTTP_PATHS.items():
        assert http_status(url.rstrip("/") + path) == 401, path
        for role, token in TOKENS.items():
            assert http_status(f"{url.rstrip('/')}{path}?token={token}") == 401, (path, role)
            expected = (200, 204, 404) if role in allowed else (403,)
            for how, headers in (("bearer", bearer(token)), ("cookie", {"Cookie": cookies[role]})):
                status = http_status(f"{url.rstrip('/')}{path}", headers)
                assert status in expected, (path, role, how, status)
    ws = url.replace("http://", "ws://")
    for path, allowed in WS_PATHS.items():
        for role, token in TOKENS.items():
            for headers in (bearer(token), {"Cookie": cookies[role]}):
                if role in allowed:
                    with connect(f"{ws}{path}", open_timeout=10,
                                 additional_headers=headers) as conn:
                        assert conn.recv(timeout=10)  # history, or the kiosk's hello
                else:
                    with pytest.raises(InvalidStatus) as refused:
                        connect(f"{ws}{path}", open_timeout=10, additional_headers=headers)
                    assert refused.value.response.status_code == 403, (path, role)
            with pytest.raises(InvalidStatus) as refused:
                connect(f"{ws}{path}?token={token}", open_timeout=10)
            assert refused.value.response.status_code == 401, (path, role)
        with pytest.raises(InvalidStatus):
            connect(f"{ws}{path}", open_timeout=10)
    for headers in (bearer(KIOSK_TOKEN), {"Cookie": cookies["kiosk"]}, bearer(TOKEN)):
        assert http_status(f"{url}api/persons/p1", headers, method="DELETE") == 403
    assert http_status(f"{url}api/persons/p1", bearer(ADMIN_TOKEN), method="DELETE") == 400
    assert http_status(f"{url}api/persons/p1", {**bearer(ADMIN_TOKEN),
                                                "X-Wellmon-Confirm": "delete"},
                       method="DELETE") == 200
    processes.stop_all()
    log = (processes.logs / "dashboard.log").read_text()
    assert "refused GET /operator" in log and "may not open this" in log
    for token in TOKENS.values():
        assert token not in log  # refusals are logged without the token
    for cookie in cookies.values():
        assert cookie.partition("=")[2] not in log  # nor the session


def test_a_kiosk_sign_in_link_sets_the_kiosk_cookie_which_opens_only_kiosk_paths(
        processes) -> None:
    dashboard = processes.start("dashboard", "dashboard")
    url = base_url(dashboard)
    code = login_code("kiosk", KIOSK_TOKEN)
    before = time.time()
    status, headers, _ = http(f"{url}kiosk?code={code}")
    assert status == 303 and headers["Location"] == "/kiosk"
    (cookie,) = headers.get_all("Set-Cookie")
    # the session, not the token: a random id, its expiry and a MAC
    match = re.fullmatch(r"wellmon_kiosk=([\w-]+)\.(\d+)\.([0-9a-f]{32}); Max-Age=43200; "
                         r"HttpOnly; SameSite=Strict; Path=/", cookie)
    assert match, cookie
    assert KIOSK_TOKEN not in cookie and code not in cookie
    assert before + 43200 - 1 <= int(match[2]) <= time.time() + 43200 + 1  # session_hours 12
    # the cookie alone is enough afterwards, and still only for the kiosk's paths
    headers = {"Cookie": cookie.split(";")[0]}
    assert http_status(f"{url}kiosk", headers) == 200
    assert http_status(f"{url}operator", headers) == 403
    assert http_status(url, headers) == 403
    with connect(f"{url.replace('http://', 'ws://')}ws/kiosk", open_timeout=10,
                 additional_headers=headers) as conn:
        assert conn.recv(timeout=10)
    # a viewer token presented in the kiosk's cookie is not the kiosk role
    assert http_status(f"{url}kiosk", {"Cookie": f"wellmon_kiosk={TOKEN}"}) == 401
    assert http_status(f"{url}kiosk", {"Cookie": f"wellmon_kiosk={KIOSK_TOKEN}"}) == 401


def test_two_roles_with_one_token_are_refused(processes, wellmon_env) -> None:
    processes.env = {**wellmon_env, "WELLMON_KIOSK_TOKEN": TOKEN}
    with pytest.raises(StartFailed, match="same token"):
        processes.start("dashboard", "dashboard", timeout=30)


def test_tls_serves_https_and_wss(processes, wellmon_env, tmp_path) -> None:
    cert, key = self_signed_cert(tmp_path)
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_TLS_CERT": str(cert),
                     "WELLMON_DASHBOARD_TLS_KEY": str(key)}
    dashboard = processes.start("dashboard", "dashboard")
    url = base_url(dashboard)
    assert url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=str(cert))
    assert http_status(url, bearer(TOKEN), context=trusted) == 200
    assert http_status(f"{url}?token={TOKEN}", context=trusted) == 401
    status, headers, _ = http(f"{url}?code={login_code('viewer', TOKEN)}", context=trusted)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("__Host-wellmon_viewer=") and "; Secure" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert http_status(url, {"Cookie": cookie.split(";")[0]}, context=trusted) == 200
    wss = f"{url.replace('https://', 'wss://')}ws"
    for headers in (bearer(TOKEN), {"Cookie": cookie.split(";")[0]}):
        with connect(wss, ssl=trusted, open_timeout=10, additional_headers=headers) as conn:
            assert conn.recv(timeout=10)
    with pytest.raises(OSError):  # plain HTTP on the TLS port gets nowhere
        urllib.request.urlopen(url.replace("https://", "http://") + "healthz", timeout=5)


def test_tls_needs_both_files(processes, wellmon_env, tmp_path) -> None:
    cert, _ = self_signed_cert(tmp_path)
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_TLS_CERT": str(cert)}
    with pytest.raises(StartFailed, match="tls_cert and dashboard.tls_key go together"):
        processes.start("dashboard", "dashboard", timeout=30)
