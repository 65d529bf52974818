"""Roles: each token opens its own pages and sockets and is refused elsewhere; TLS works."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, TOKEN

TOKENS = {"viewer": TOKEN, "kiosk": KIOSK_TOKEN, "admin": ADMIN_TOKEN}
HTTP_PATHS = {
    "/": {"viewer", "admin"},
    "/kiosk": {"kiosk", "admin"},
    "/operator": {"admin"},
    "/api/status": {"viewer", "admin"},
    "/api/checks": {"admin"},
    "/api/checks/1": {"admin"},
}
WS_PATHS = {"ws": {"viewer", "admin"}, "ws/kiosk": {"kiosk", "admin"}}


def base_url(dashboard) -> str:
    return dashboard.ready_line.partition("url=")[2].strip()


def http_status(url: str, headers: dict[str, str] | None = None, method: str = "GET",
                context: ssl.SSLContext | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_each_token_opens_only_what_its_role_may(processes) -> None:
    dashboard = processes.start("dashboard", "dashboard")
    url = base_url(dashboard)
    for path, allowed in HTTP_PATHS.items():
        assert http_status(url.rstrip("/") + path) == 401, path
        for role, token in TOKENS.items():
            status = http_status(f"{url.rstrip('/')}{path}?token={token}")
            expected = (200, 404) if role in allowed else (403,)
            assert status in expected, (path, role, status)
    ws = url.replace("http://", "ws://")
    for path, allowed in WS_PATHS.items():
        for role, token in TOKENS.items():
            if role in allowed:
                with connect(f"{ws}{path}?token={token}", open_timeout=10) as conn:
                    assert conn.recv(timeout=10)  # history, or the kiosk's hello
            else:
                with pytest.raises(InvalidStatus) as refused:
                    connect(f"{ws}{path}?token={token}", open_timeout=10)
                assert refused.value.response.status_code == 403, (path, role)
        with pytest.raises(InvalidStatus):
            connect(f"{ws}{path}", open_timeout=10)
    assert http_status(f"{url}api/persons/p1?token={KIOSK_TOKEN}", method="DELETE") == 403
    assert http_status(f"{url}api/persons/p1?token={ADMIN_TOKEN}", method="DELETE") == 400
    assert http_status(f"{url}api/persons/p1?token={ADMIN_TOKEN}", method="DELETE",
                       headers={"X-Wellmon-Confirm": "delete"}) == 200
    processes.stop_all()
    log = (processes.logs / "dashboard.log").read_text()
    assert "refused GET /operator" in log and "may not open this" in log
    for token in TOKENS.values():
        assert token not in log  # refusals are logged without the token


def test_a_page_sets_the_cookie_of_the_role_whose_token_it_got(processes) -> None:
    dashboard = processes.start("dashboard", "dashboard")
    request = urllib.request.Request(f"{base_url(dashboard)}kiosk?token={KIOSK_TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as response:
        cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"wellmon_kiosk={KIOSK_TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # the cookie alone is enough afterwards, and still only for the kiosk's paths
    headers = {"Cookie": f"wellmon_kiosk={KIOSK_TOKEN}"}
    assert http_status(f"{base_url(dashboard)}kiosk", headers) == 200
    assert http_status(f"{base_url(dashboard)}operator", headers) == 403
    # a viewer token presented in the kiosk's cookie is not the kiosk role
    assert http_status(f"{base_url(dashboard)}kiosk", {"Cookie": f"wellmon_kiosk={TOKEN}"}) == 401


def test_two_roles_with_one_token_are_refused(processes, wellmon_env) -> None:
    processes.env = {**wellmon_env, "WELLMON_KIOSK_TOKEN": TOKEN}
    with pytest.raises(AssertionError, match="same token"):
        processes.start("dashboard", "dashboard", timeout=30)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_serves_https_and_wss(processes, wellmon_env, tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_TLS_CERT": str(cert),
                     "WELLMON_DASHBOARD_TLS_KEY": str(key)}
    dashboard = processes.start("dashboard", "dashboard")
    url = base_url(dashboard)
    assert url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=str(cert))
    assert http_status(f"{url}?token={TOKEN}", context=trusted) == 200
    request = urllib.request.Request(f"{url}?token={TOKEN}")
    with urllib.request.urlopen(request, timeout=10, context=trusted) as response:
        assert "Secure" in response.headers["Set-Cookie"]
    with connect(f"{url.replace('https://', 'wss://')}ws?token={TOKEN}", ssl=trusted,
                 open_timeout=10) as conn:
        assert conn.recv(timeout=10)
    with pytest.raises(OSError):  # plain HTTP on the TLS port gets nowhere
        urllib.request.urlopen(url.replace("https://", "http://") + "healthz", timeout=5)


def test_tls_needs_both_files(processes, wellmon_env, tmp_path) -> None:
    cert, _ = _self_signed(tmp_path)
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_TLS_CERT": str(cert)}
    with pytest.raises(AssertionError, match="tls_cert and dashboard.tls_key go together"):
        processes.start("dashboard", "dashboard", timeout=30)
