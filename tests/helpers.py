"""Helpers the tests share: tokens, settings, HTTP and WebSocket clients. The processes are
started by wellmon/harness.py (`Processes`, the `processes` fixture of conftest.py) and the
dashboard's WebSocket is read by wellmon/live_reader.py, as the benchmarks do."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

from websockets.sync.client import ClientConnection

from wellmon.dashboard.auth import login_url
from wellmon.live_reader import open_dashboard_ws

TOKEN = "test-token-0123456789"
KIOSK_TOKEN = "test-kiosk-token-0123456789"
ADMIN_TOKEN = "test-admin-token-0123456789"
ROLE_TOKENS = {"WELLMON_KIOSK_TOKEN": KIOSK_TOKEN, "WELLMON_ADMIN_TOKEN": ADMIN_TOKEN}
# Short state thresholds so that tests see stale and lost within seconds.
FAST_STATES = {"WELLMON_NODE_STALE_AFTER_S": "1.0", "WELLMON_NODE_LOST_AFTER_S": "2.5"}


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
