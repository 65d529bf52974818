"""The dashboard's door: a sign-in (a link's cookie, or a program's Bearer token) for page,
assets and socket; bad clients closed, others served."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.helpers import TOKEN, http, open_ws, sign_in
from wellmon.dashboard.auth import login_code
from wellmon.dashboard.fanout import Client
from wellmon.harness import dashboard_ws_url, ready_url
from wellmon.live_reader import bearer, open_dashboard_ws, scores_until


def _get(url: str, cookie: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    status, got, body = http(url, {**({"Cookie": cookie} if cookie else {}), **(headers or {})})
    return status, dict(got), body


@pytest.fixture()
def dashboard(processes):
    proc = processes.start("dashboard", "dashboard")
    return ready_url(proc.ready_line)


def test_page_and_assets_need_a_sign_in(dashboard, processes, tmp_path) -> None:
    assert _get(dashboard)[0] == 401
    assert _get(dashboard + "?token=wrong-token-value")[0] == 401
    assert _get(dashboard + f"?token={TOKEN}")[0] == 401  # never in an address any more
    assert _get(dashboard, headers=bearer("wrong-token-value"))[0] == 401
    status, headers, body = _get(dashboard, headers=bearer(TOKEN))  # a program
    assert status == 200 and b"wellmon" in body and b"not a diagnosis" in body
    code = login_code("viewer", TOKEN)
    status, headers, _ = _get(f"{dashboard}?code={code}")  # a browser's sign-in link
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie and code not in cookie
    status, _, body = _get(dashboard, cookie=cookie.split(";")[0])
    assert status == 200 and b"wellmon" in body and b"not a diagnosis" in body
    assert _get(dashboard + "static/app.js")[0] == 401
    assert _get(dashboard + "static/app.js", cookie=cookie.split(";")[0])[0] == 200
    assert _get(dashboard + "static/vendor/uPlot.iife.min.js",
                cookie=cookie.split(";")[0])[0] == 200
    assert _get(dashboard + "static/../server.py", cookie=cookie.split(";")[0])[0] == 404
    assert _get(dashboard + "healthz")[0] == 200
    log = (tmp_path / "dashboard.log").read_text()
    assert "refused" in log and "wrong-token-value" not in log and TOKEN not in log
    assert code not in log and cookie.split(";")[0].partition("=")[2] not in log


@pytest.mark.parametrize("offer", ["nothing", "wrong bearer", "token in the address",
                                   "wrong cookie"])
def test_websocket_without_the_right_token_is_refused(dashboard, offer) -> None:
    url = dashboard.replace("http://", "ws://") + "ws"
    options = {"nothing": {},
               "wrong bearer": {"additional_headers": bearer("wrong-token-value")},
               "wrong cookie": {"additional_headers": {"Cookie": "wellmon_viewer=a.9999999999.b"}},
               "token in the address": {}}[offer]
    if offer == "token in the address":
        url += f"?token={TOKEN}"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10, **options)
    assert refused.value.response.status_code == 401


def test_cross_origin_websocket_is_refused(dashboard) -> None:
    url = dashboard.replace("http://", "ws://") + "ws"
    with pytest.raises(InvalidStatus) as refused:
        open_dashboard_ws(url, TOKEN, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # a browser on another site sends the page's cookie along: still refused
    cookie = sign_in(dashboard, "viewer", TOKEN)
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10, origin="http://evil.example",
                additional_headers={"Cookie": cookie})
    assert refused.value.response.status_code == 403
    with connect(url, open_timeout=10, origin=dashboard.rstrip("/"),
                 additional_headers={"Cookie": cookie}) as same_origin:
        assert json.loads(same_origin.recv(timeout=10))["type"] == "history"


def test_a_client_sending_garbage_is_closed_and_others_keep_receiving(processes, clip) -> None:
    path, _ = clip
    processes.start("node", "infer")
    dash = processes.start("dashboard", "dashboard")
    processes.start("capture-video", "capture", "--modality", "video", "--source", str(path))
    url = dashboard_ws_url(dash.ready_line)
    with open_ws(url) as rude, open_ws(url) as polite:
        scores_until(rude, lambda s: True)
        scores_until(polite, lambda s: True)
        rude.send("garbage, not JSON")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                rude.recv(timeout=10)
        assert closed.value.rcvd.code == 1007  # invalid data: not JSON
        assert closed.value.rcvd.reason == "bad_json"
        before = scores_until(polite, lambda s: True)[-1]["t_end"]
        after = scores_until(polite, lambda s: s["t_end"] >= before + 1.0)
        assert after[-1]["state"] == "live"
        polite.send('{"type": "ping"}')
        assert "pong" in [_type(polite.recv(timeout=10)) for _ in range(20)]


def _type(text: str) -> str:
    return json.loads(text)["type"]


def test_without_wellmon_token_one_is_generated_once_and_kept_private(processes,
                                                                      tmp_path) -> None:
    del processes.env["WELLMON_TOKEN"]
    token_file = tmp_path / "state" / "token"
    processes.env["WELLMON_DASHBOARD_TOKEN_FILE"] = str(token_file)
    first = ready_url(processes.start("dashboard", "dashboard").ready_line)
    token = token_file.read_text().strip()
    assert len(token) >= 24 and (token_file.stat().st_mode & 0o777) == 0o600
    assert _get(first, headers=bearer(token))[0] == 200
    cookie = sign_in(first, "viewer", token)  # sign-in links are signed with it too
    assert _get(first, cookie=cookie)[0] == 200
    processes.kill("dashboard")
    second = ready_url(processes.start("dashboard", "dashboard").ready_line)
    assert token_file.read_text().strip() == token
    assert _get(second, headers=bearer(token))[0] == 200
    assert _get(second, cookie=cookie)[0] == 200  # the same token: the session outlives it


def test_a_slow_client_loses_its_oldest_updates_not_the_newest() -> None:
    client = Client(connection=None, capacity=3)
    for i in range(10):
        client.offer(str(i))
    assert list(client.queue) == ["7", "8", "9"]
    assert client.dropped == 7
