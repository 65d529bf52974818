"""The dashboard's door after tokens left the URL, on real dashboard processes: one-time
sign-in links, signed expiring session cookies (``__Host-`` and Secure under TLS), security
headers on every answer, WebSocket caps per role and in all, decode errors closed with the
code that says why, and the history sent to a new client in chunks of at most 60 s."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

import pytest
import zmq
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.helpers import (
    ADMIN_TOKEN,
    FAST_STATES,
    KIOSK_TOKEN,
    TOKEN,
    http,
    open_ws,
    self_signed_cert,
    sign_in,
)
from wellmon.dashboard.auth import LOGIN_CODE_S, Sessions, login_code
from wellmon.dashboard.responses import SECURITY_HEADERS
from wellmon.harness import dashboard_ws_url, get_json, ready_url
from wellmon.live_reader import bearer, open_dashboard_ws, scores_until

TOKENS = {"viewer": TOKEN, "kiosk": KIOSK_TOKEN, "admin": ADMIN_TOKEN}
COOKIE = re.compile(r"(wellmon_\w+)=([\w-]+)\.(\d+)\.([0-9a-f]{32}); Max-Age=(\d+); HttpOnly; "
                    r"SameSite=Strict; Path=/")
EXPIRED_OR_USED = b"this sign-in link has expired or was already used"
DEADLINE_S = 60.0


def start(processes, name: str = "dashboard"):
    """A dashboard on a free port; its base URL (ending in /)."""
    return ready_url(processes.start(name, "dashboard").ready_line)


def ws_base(base: str) -> str:
    return base.replace("https://", "wss://").replace("http://", "ws://")


def other_hex(text: str) -> str:
    """``text`` with its last hex digit changed."""
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def first_message(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=DEADLINE_S))


def history_chunks(ws: ClientConnection) -> list[str]:
    """The raw texts of a new client's history messages, up to the one marked last."""
    texts = [ws.recv(timeout=DEADLINE_S)]
    while not json.loads(texts[-1]).get("last"):
        texts.append(ws.recv(timeout=DEADLINE_S))
        assert len(texts) < 1000, "no history message is marked last"
    return texts


# --- sign-in links ------------------------------------------------------------------------


def test_a_sign_in_link_works_once_and_only_fresh_from_this_dashboard(processes) -> None:
    early = login_code("viewer", TOKEN, now=time.time() - 60)  # before the dashboard started
    base = start(processes)
    code = login_code("viewer", TOKEN)

    status, headers, _ = http(f"{base}?code={code}")
    assert status == 303 and headers["Location"] == "/"
    (set_cookie,) = headers.get_all("Set-Cookie")
    match = COOKIE.fullmatch(set_cookie)
    assert match and match[1] == "wellmon_viewer", set_cookie
    assert TOKEN not in set_cookie and code not in set_cookie
    cookie = set_cookie.split(";")[0]

    # used once: refused the second time, with the line saying how to get a new one
    status, headers, body = http(f"{base}?code={code}")
    assert status == 401 and headers.get_all("Set-Cookie") is None
    assert EXPIRED_OR_USED in body and b"wellmon login viewer" in body
    # ... unless the browser holds a session for the page already: then on to the page
    status, headers, _ = http(f"{base}?code={code}", {"Cookie": cookie})
    assert status == 303 and headers["Location"] == "/"
    assert headers.get_all("Set-Cookie") is None

    fresh = login_code("viewer", TOKEN)
    nonce, made, mac = fresh.split(".")
    refused = {
        "tampered MAC": f"{nonce}.{made}.{other_hex(mac)}",
        "tampered time": f"{nonce}.{int(made) - 1}.{mac}",
        "tampered nonce": f"{nonce}x.{made}.{mac}",
        "made before the dashboard started": early,
        "expired": login_code("viewer", TOKEN, now=time.time() - LOGIN_CODE_S - 1),
        "made in the future": login_code("viewer", TOKEN, now=time.time() + 120),
        "signed with another role's token": login_code("viewer", KIOSK_TOKEN),
        "garbage": "garbage",
    }
    for why, bad in refused.items():
        status, headers, body = http(f"{base}?code={bad}")
        assert status == 401, why
        assert headers.get_all("Set-Cookie") is None, why
        assert EXPIRED_OR_USED in body, why
    status, _, _ = http(f"{base}?code={fresh}")  # the untampered code was not used up
    assert status == 303

    # the cookie opens the viewer's page, status and socket, and nothing of the other roles
    held = {"Cookie": cookie}
    assert http(base, held)[0] == 200
    assert http(f"{base}api/status", held)[0] == 200
    assert http(f"{base}api/session", held)[0] == 204
    with connect(f"{ws_base(base)}ws", open_timeout=10, additional_headers=held) as ws:
        assert first_message(ws)["type"] == "history"
    for path in ("kiosk", "operator", "api/checks", "api/checks/1"):
        assert http(f"{base}{path}", held)[0] == 403, path
    with pytest.raises(InvalidStatus) as no:
        connect(f"{ws_base(base)}ws/kiosk", open_timeout=10, additional_headers=held)
    assert no.value.response.status_code == 403

    # a token in the address is refused, even beside a valid cookie, and says what to do
    for headers in ({}, held):
        status, _, body = http(f"{base}?token={TOKEN}", headers)
        assert status == 401
        assert b"wellmon login" in body and b"Authorization: Bearer" in body

    # a kiosk's link opens nothing of the operator page, and makes no admin session
    kiosk_code = login_code("kiosk", KIOSK_TOKEN)
    status, headers, body = http(f"{base}operator?code={kiosk_code}")
    assert status == 401 and b"for another page" in body
    assert not headers.get_all("Set-Cookie")
    # ... and is not spent by that: it still signs the kiosk page in
    status, headers, _ = http(f"{base}kiosk?code={kiosk_code}")
    assert status == 303 and headers["Location"] == "/kiosk"
    assert headers["Set-Cookie"].startswith("wellmon_kiosk=")

    processes.stop_all()
    log = (processes.logs / "dashboard.log").read_text()
    assert "signed in a viewer browser" in log
    for secret in (*TOKENS.values(), code, fresh, kiosk_code, cookie.partition("=")[2]):
        assert secret not in log


def test_a_code_is_good_for_login_code_s_and_once() -> None:
    """The expiry alone (the dashboard test above cannot wait five minutes for a code that
    is older than five minutes yet younger than the dashboard)."""
    now = time.time()
    sessions = Sessions(TOKENS, 3600, started=now - 3 * LOGIN_CODE_S)
    assert sessions.redeem(login_code("kiosk", KIOSK_TOKEN, now=now - LOGIN_CODE_S - 1),
                           now) is None
    almost = login_code("kiosk", KIOSK_TOKEN, now=now - LOGIN_CODE_S + 5)
    assert sessions.redeem(almost, now) == "kiosk"
    assert sessions.redeem(almost, now) is None


# --- session cookies ------------------------------------------------------------------------


def test_a_forged_or_misplaced_session_cookie_is_refused(processes, wellmon_env) -> None:
    base = start(processes)
    cookie = sign_in(base, "viewer", TOKEN)
    name, value = cookie.split("=", 1)
    sid, expires, mac = value.split(".")
    assert name == "wellmon_viewer" and int(expires) > time.time()
    expired = Sessions(TOKENS, -60).issue("viewer", time.time())  # signed right, but past
    forged = {
        "later expiry": ("", f"{name}={sid}.{int(expires) + 86400}.{mac}"),
        "earlier expiry": ("", f"{name}={sid}.{int(expires) - 1}.{mac}"),
        "other MAC": ("", f"{name}={sid}.{expires}.{other_hex(mac)}"),
        "other id": ("", f"{name}={sid}x.{expires}.{mac}"),
        "expired": ("", f"{name}={expired}"),
        "the token itself": ("", f"{name}={TOKEN}"),
        "the viewer's session as the kiosk's": ("kiosk", f"wellmon_kiosk={value}"),
        "the viewer's session as the admin's": ("operator", f"wellmon_admin={value}"),
        "the viewer's session as the admin's, for the API": ("api/checks",
                                                             f"wellmon_admin={value}"),
    }
    for why, (path, bad) in forged.items():
        assert http(f"{base}{path}", {"Cookie": bad})[0] == 401, why
    for bad in (forged["other MAC"][1], forged["expired"][1]):
        with pytest.raises(InvalidStatus) as no:
            connect(f"{ws_base(base)}ws", open_timeout=10, additional_headers={"Cookie": bad})
        assert no.value.response.status_code == 401
    assert http(base, {"Cookie": cookie})[0] == 200  # the real one still works

    # each page load and /api/session renew the session: a new id, a later or equal expiry
    for path, status in (("", 200), ("api/session", 204)):
        got, headers, _ = http(f"{base}{path}", {"Cookie": cookie})
        assert got == status
        (renewed,) = headers.get_all("Set-Cookie")
        match = COOKIE.fullmatch(renewed)
        assert match and match[1] == "wellmon_viewer" and match[2] != sid, renewed
        assert int(match[3]) >= int(expires)
        assert http(base, {"Cookie": renewed.split(";")[0]})[0] == 200

    # signed with the role's token: it outlives a restart, and dies with the token
    processes.kill("dashboard")
    base = start(processes)
    assert http(base, {"Cookie": cookie})[0] == 200
    processes.kill("dashboard")
    processes.env = {**wellmon_env, "WELLMON_TOKEN": "another-token-0123456789"}
    base = start(processes)
    assert http(base, {"Cookie": cookie})[0] == 401
    assert http(base, {"Cookie": sign_in(base, "viewer", "another-token-0123456789")})[0] == 200


def test_under_tls_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent(
        processes, wellmon_env, tmp_path) -> None:
    cert, key = self_signed_cert(tmp_path)
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_TLS_CERT": str(cert),
                     "WELLMON_DASHBOARD_TLS_KEY": str(key)}
    base = start(processes)
    assert base.startswith("https://")
    trusted = ssl.create_default_context(cafile=str(cert))
    answers = {}
    answers[303] = http(f"{base}?code={login_code('viewer', TOKEN)}", context=trusted)
    assert answers[303][1]["Location"] == "/"
    (set_cookie,) = answers[303][1].get_all("Set-Cookie")
    assert set_cookie.startswith("__Host-wellmon_viewer=")
    assert set_cookie.endswith("; Secure") and "; Path=/" in set_cookie
    assert "Domain" not in set_cookie and "HttpOnly" in set_cookie
    cookie = set_cookie.split(";")[0]
    answers[200] = http(base, {"Cookie": cookie}, context=trusted)
    # the unprefixed name is not the session under TLS
    answers[401] = http(base, {"Cookie": cookie.removeprefix("__Host-")}, context=trusted)
    answers[404] = http(f"{base}nope", {"Cookie": cookie}, context=trusted)
    for status, (got, headers, _) in answers.items():
        assert got == status
        assert headers.get_all("Strict-Transport-Security") == ["max-age=31536000"], status
        assert headers["X-Frame-Options"] == "DENY", status
    with connect(f"{ws_base(base)}ws", ssl=trusted, open_timeout=10,
                 additional_headers={"Cookie": cookie}) as ws:
        assert ws.response.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert first_message(ws)["type"] == "history"


# --- security headers -------------------------------------------------------------------------


def assert_security_headers(headers, what: object) -> None:
    """Each of SECURITY_HEADERS once, with its value; framing refused outright; no HSTS on
    plain HTTP (it is only sent under TLS)."""
    for name, value in SECURITY_HEADERS:
        assert headers.get_all(name) == [value], (what, name, headers.get_all(name))
    assert headers.get_all("X-Frame-Options") == ["DENY"], what
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, what
    assert headers["X-Content-Type-Options"] == "nosniff", what
    assert not headers.get_all("Strict-Transport-Security"), what


def test_security_headers_are_on_every_answer(processes) -> None:
    processes.env["WELLMON_DASHBOARD_MAX_CLIENTS_PER_ROLE"] = "1"
    base = start(processes)
    ws_url = f"{ws_base(base)}ws"
    viewer, admin = bearer(TOKEN), bearer(ADMIN_TOKEN)
    answers = {
        "page": (200, http(base, viewer)),
        "health": (200, http(f"{base}healthz")),
        "asset": (200, http(f"{base}static/app.js", viewer)),
        "status": (200, http(f"{base}api/status", viewer)),
        "session": (204, http(f"{base}api/session", viewer)),
        "sign-in": (303, http(f"{base}?code={login_code('viewer', TOKEN)}")),
        "unconfirmed delete": (400, http(f"{base}api/persons/p1", admin, method="DELETE")),
        "not signed in": (401, http(base)),
        "token in the address": (401, http(f"{base}?token={TOKEN}")),
        "used link": (401, http(f"{base}?code=a.1.b")),
        "other role": (403, http(f"{base}operator", viewer)),
        "unknown path": (404, http(f"{base}nope", viewer)),
        "outside the assets": (404, http(f"{base}static/../server.py", viewer)),
        "method": (405, http(base, viewer, method="POST")),
    }
    for what, (expected, (status, headers, _)) in answers.items():
        assert status == expected, (what, status)
        assert_security_headers(headers, what)

    refusals = {}
    with pytest.raises(InvalidStatus) as no:
        connect(ws_url, open_timeout=10)
    refusals["socket, not signed in"] = (401, no.value.response)
    with pytest.raises(InvalidStatus) as no:
        open_dashboard_ws(ws_url, TOKEN, origin="http://evil.example")
    refusals["socket, cross-origin"] = (403, no.value.response)
    with open_ws(ws_url) as ws:
        assert_security_headers(ws.response.headers, "handshake")
        assert ws.response.status_code == 101
        assert first_message(ws)["type"] == "history"
        with pytest.raises(InvalidStatus) as no:
            open_ws(ws_url)  # one viewer socket at most here
        refusals["socket, over the cap"] = (503, no.value.response)
    for what, (expected, response) in refusals.items():
        assert response.status_code == expected, what
        assert_security_headers(response.headers, what)


# --- wellmon login, in a browser ------------------------------------------------------------


@pytest.mark.browser
def test_wellmon_login_prints_a_link_that_signs_one_browser_in(processes) -> None:
    from playwright.sync_api import sync_playwright

    from tests.system.test_browser import CHROMIUM, CHROMIUM_ARGS

    base = start(processes)
    links = {}
    for role in ("viewer", "kiosk"):
        done = subprocess.run([sys.executable, "-m", "wellmon", "login", role, "--url", base],
                              env=processes.env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        links[role] = done.stdout.strip()
        page = "" if role == "viewer" else "kiosk"
        assert re.fullmatch(re.escape(f"{base}{page}") + r"\?code=[\w-]+\.\d+\.[0-9a-f]{32}",
                            links[role]), links[role]
        assert TOKENS[role] not in done.stdout + done.stderr

    with sync_playwright() as p, tempfile.TemporaryDirectory() as one, \
            tempfile.TemporaryDirectory() as two:
        first = p.chromium.launch_persistent_context(
            one, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = first.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            response = page.goto(links["viewer"])
            assert response.status == 200 and page.url == base  # signed in, on the bare URL
            assert "code=" not in page.url
            page.wait_for_function("document.querySelector('#connection').innerText"
                                   ".startsWith('connected')", timeout=30_000)  # its socket
            assert "not a diagnosis" in page.inner_text("body")
            response = page.reload()  # the cookie, not the link, keeps it signed in
            assert response.status == 200 and page.url == base
            kiosk = first.new_page()
            response = kiosk.goto(links["kiosk"])
            assert response.status == 200 and kiosk.url == f"{base}kiosk"
            cookies = {c["name"]: c for c in first.cookies()}
            assert set(cookies) == {"wellmon_viewer", "wellmon_kiosk"}
            assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies.values())
            assert not [e for e in errors if "favicon" not in e], errors  # no CSP violation
        finally:
            first.close()
        second = p.chromium.launch_persistent_context(
            two, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = second.new_page()
            response = page.goto(links["viewer"])  # the same link, in another browser
            assert response.status == 401
            body = page.inner_text("body")
            assert "expired or was already used" in body and "wellmon login viewer" in body
            assert page.goto(base).status == 401
            assert second.cookies() == []
        finally:
            second.close()


# --- WebSocket caps -------------------------------------------------------------------------


def healthy(base: str) -> bool:
    return http(f"{base}healthz")[0] == 200


def test_sockets_are_capped_per_role_and_in_all(processes) -> None:
    processes.env.update({"WELLMON_DASHBOARD_MAX_CLIENTS_PER_ROLE": "3",
                          "WELLMON_DASHBOARD_MAX_CLIENTS": "5"})
    base = start(processes)
    ws_url, kiosk_url = f"{ws_base(base)}ws", f"{ws_base(base)}ws/kiosk"
    with ExitStack() as stack:
        opened: list[ClientConnection] = []

        def enter(url: str, token: str = TOKEN) -> ClientConnection:
            opened.append(stack.enter_context(open_ws(url, token)))
            return opened[-1]

        for _ in range(3):
            assert first_message(enter(ws_url))["type"] == "history"  # it is counted by now
        assert healthy(base)
        with pytest.raises(InvalidStatus) as no:
            enter(ws_url)
        assert no.value.response.status_code == 503
        assert b"dashboard.max_clients_per_role is 3" in no.value.response.body
        assert healthy(base)

        # other roles still get in
        assert first_message(enter(kiosk_url, KIOSK_TOKEN))["type"] == "kiosk.hello"
        assert first_message(enter(ws_url, ADMIN_TOKEN))["type"] == "history"
        assert healthy(base)
        with pytest.raises(InvalidStatus) as no:  # five open: the limit over all roles
            enter(kiosk_url, KIOSK_TOKEN)
        assert no.value.response.status_code == 503
        assert b"dashboard.max_clients is 5" in no.value.response.body
        assert healthy(base)
        status = get_json(f"{base}api/status", TOKEN)
        assert status["clients"] == 4  # live pages; the kiosk's socket is counted apart
        refused = " | ".join(status["refused"])
        assert "dashboard.max_clients_per_role is 3" in refused
        assert "dashboard.max_clients is 5" in refused

        opened[0].close()  # a viewer leaves: its place is free again
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                again = enter(ws_url)
                break
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                assert time.monotonic() < deadline, "the closed socket's place stayed taken"
                time.sleep(0.2)
        assert first_message(again)["type"] == "history"
        assert healthy(base)
    assert processes.procs["dashboard"].poll() is None


# --- decode errors ----------------------------------------------------------------------------


def closed_by_server(ws: ClientConnection, message: str | bytes):
    """Send ``message`` and read until the server closes; the close frame it sent."""
    ws.send(message)
    deadline = time.monotonic() + DEADLINE_S
    with pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() < deadline:
            ws.recv(timeout=DEADLINE_S)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd


def test_undecodable_messages_close_with_the_code_that_says_why(processes) -> None:
    base = start(processes)
    ws_url, kiosk_url = f"{ws_base(base)}ws", f"{ws_base(base)}ws/kiosk"
    cases = [  # (socket, message, close code, fault counted)
        (ws_url, "[" * 2000, 1007, "bad_json"),  # nesting deeper than the parser goes
        (kiosk_url, "[" * 2000, 1007, "bad_json"),
        (ws_url, "not JSON", 1007, "bad_json"),
        (ws_url, b"\x00\x01binary", 1008, "bad_frame"),
        (ws_url, '"' + "x" * 5000 + '"', 1009, "too_big"),  # over 4096 bytes
        (ws_url, "[]", 1008, "unknown_type"),
        (ws_url, '{"type": "subscribe"}', 1008, "unknown_type"),
    ]
    expected: dict[str, int] = {}
    for url, message, code, kind in cases:
        with open_ws(url, KIOSK_TOKEN if url == kiosk_url else TOKEN) as ws:
            ws.recv(timeout=DEADLINE_S)  # history, or the kiosk's hello
            close = closed_by_server(ws, message)
        assert close.code == code, (message[:20], close)  # never 1011 (a server error)
        expected[kind] = expected.get(kind, 0) + 1
        deadline = time.monotonic() + DEADLINE_S
        while (faults := get_json(f"{base}api/status", TOKEN)["client_faults"]) != expected:
            assert time.monotonic() < deadline, (faults, expected)
            time.sleep(0.1)
        assert healthy(base)
    with open_ws(ws_url) as ws:  # still serving
        assert first_message(ws)["type"] == "history"
        ws.send('{"type": "ping"}')
        assert first_message(ws)["type"] == "pong"
    assert processes.procs["dashboard"].poll() is None
    processes.stop_all()
    assert "Traceback" not in (processes.logs / "dashboard.log").read_text()


# --- history in chunks --------------------------------------------------------------------------


def check_chunks(texts: list[str]) -> list[dict]:
    """The history messages' rules; their scores, oldest first."""
    chunks = [json.loads(t) for t in texts]
    assert chunks and all(c["type"] == "history" for c in chunks)
    assert [c["last"] for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert ["node" in c for c in chunks] == [False] * (len(chunks) - 1) + [True]
    for chunk in chunks:
        ends = [s["t_end"] for s in chunk["scores"]]
        assert not ends or max(ends) - min(ends) <= 60.0, (min(ends), max(ends))
    scores = [s for c in chunks for s in c["scores"]]
    ends = [s["t_end"] for s in scores]
    assert ends == sorted(ends)
    keys = [(s["stream"], s["seq"]) for s in scores]
    assert len(set(keys)) == len(keys), "a score twice in the history"
    return scores


def fake_score(stream: str, seq: int, t_end: float) -> dict:
    return {"stream": stream, "seq": seq, "t_start": t_end - 2.0, "t_end": t_end,
            "state": "live", "stress": None, "emotions": {"neutral": 1.0},
            "quality": {"face": {"present": 1.0}}, "signals": {"brightness": 0.5}}


def test_a_new_client_gets_the_history_in_chunks_of_at_most_60_s(processes,
                                                                  wellmon_env) -> None:
    """Two and a half minutes of two streams' scores from a stand-in node."""
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 100_000)
    pub.bind(wellmon_env["WELLMON_NODE_OUTPUT"])  # where the dashboard subscribes
    try:
        base = start(processes)

        def publish_stats(stats: dict, until) -> None:
            deadline = time.monotonic() + DEADLINE_S
            while not until(get_json(f"{base}api/status", TOKEN)):
                assert time.monotonic() < deadline, "the dashboard heard nothing"
                pub.send_multipart([b"n.fake-node", json.dumps(stats).encode()])
                time.sleep(0.1)

        publish_stats({"name": "fake-node", "published": 0},
                      lambda s: s["node"].get("name") == "fake-node")
        t0 = time.time() - 200
        published = sorted((fake_score(stream, k, t0 + 0.5 * k + offset)
                            for stream, offset in (("hist-a", 0.0), ("hist-b", 0.25))
                            for k in range(300)), key=lambda s: s["t_end"])
        for score in published:
            pub.send_multipart([f"s.{score['stream']}".encode(), json.dumps(score).encode()])
        final = {"name": "fake-node", "published": len(published)}
        publish_stats(final, lambda s: s["node"] == final and all(
            s["streams"].get(n, {}).get("t_end") == published[-1 - i]["t_end"]
            for i, n in enumerate(("hist-b", "hist-a"))))

        ws_url = f"{ws_base(base)}ws"
        with open_ws(ws_url) as one, open_ws(ws_url) as two:
            texts = history_chunks(one)
            assert history_chunks(two) == texts  # joined once, shared
            scores = check_chunks(texts)
            assert len(texts) >= 3  # 150 s of scores
            assert scores == published  # every score, once, as the node sent it
            assert json.loads(texts[-1])["node"] == final
            late = fake_score("hist-a", 300, published[-1]["t_end"] + 0.25)
            pub.send_multipart([b"s.hist-a", json.dumps(late).encode()])
            for ws in (one, two):  # live after the history
                message = first_message(ws)
                while message == {"type": "node", "node": final}:  # a late repeat
                    message = first_message(ws)
                assert message == {"type": "score", "score": late}
        with open_ws(ws_url) as three:  # a later client's history has the new score
            assert check_chunks(history_chunks(three)) == [*published, late]
    finally:
        pub.close()
        context.term()


def test_history_chunks_from_a_real_node(processes, clip) -> None:
    path, _ = clip
    processes.env.update({**FAST_STATES, "WELLMON_ASR_ENGINE": "off"})
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    processes.start("capture-video", "capture", "--modality", "video", "--source", str(path),
                    "--stream", "cam-a")
    url = dashboard_ws_url(dashboard.ready_line)
    with open_ws(url) as early:
        seen = scores_until(early, lambda s: s["stream"] == "cam-a" and s["seq"] >= 6,
                            timeout=90)
    with open_ws(url) as late:
        texts = history_chunks(late)
    scores = check_chunks(texts)
    assert isinstance(json.loads(texts[-1])["node"], dict)
    assert {(s["stream"], s["seq"]) for s in seen} <= {(s["stream"], s["seq"]) for s in scores}
    assert max(s["seq"] for s in scores if s["stream"] == "cam-a") >= 6
