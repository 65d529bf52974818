"""Reports where people already are: the live page's "Report" of a stream's session and the
operator page's report of a kiosk check, served by a real dashboard from what it holds,
with the same code as `wellmon report`."""

from __future__ import annotations

import json
import time

import zmq

from tests.helpers import ADMIN_TOKEN, TOKEN, http
from wellmon.dashboard.store import open_store
from wellmon.harness import get_json, ready_url
from wellmon.live_reader import bearer

DEADLINE_S = 30.0


def score(stream: str, seq: int, t_end: float, valence: float) -> dict:
    return {"stream": stream, "seq": seq, "t_start": t_end - 4.0, "t_end": t_end,
            "state": "live", "stress": 50.0 + seq % 7, "valence": valence, "arousal": 0.5,
            "emotions": {"happy": 0.6, "neutral": 0.4},
            "quality": {"face": {"present": 1.0}, "video": {"present": True},
                        "audio": {"present": True}},
            "signals": {"heart_rate": 70.0, "voice_activity": 0.4},
            "transcript": [{"text": "a fine morning", "final": True, "sentiment": 0.4,
                            "t_start": t_end - 3.0, "t_end": t_end - 2.0}],
            "latency_ms": {}, "drivers": [], "reasons": {}, "v": 1}


def test_a_viewer_gets_the_report_of_a_live_session_but_not_of_a_kiosk_check(
        processes, wellmon_env) -> None:
    processes.env["WELLMON_DASHBOARD_KIOSK_STREAM"] = "kiosk-cam"
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(wellmon_env["WELLMON_NODE_OUTPUT"])
    try:
        base = ready_url(processes.start("dashboard", "dashboard").ready_line)
        t0 = time.time() - 60
        sent = [score(stream, k, t0 + 0.5 * k, 0.8 - k / 100)
                for k in range(1, 100) for stream in ("desk-1", "kiosk-cam")]
        deadline = time.monotonic() + DEADLINE_S
        while get_json(f"{base}api/status", TOKEN)["streams"].get("desk-1", {}).get(
                "t_end") != sent[-1]["t_end"]:
            assert time.monotonic() < deadline, "the dashboard heard nothing"
            for message in sent:
                pub.send_multipart([f"s.{message['stream']}".encode(),
                                    json.dumps(message).encode()])
            time.sleep(0.5)

        status, headers, body = http(f"{base}api/streams/desk-1/report", bearer(TOKEN))
        page = body.decode()
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        nonce = page.split('<script nonce="')[1].split('"')[0]
        assert f"script-src 'nonce-{nonce}'" in headers["Content-Security-Policy"]
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
        assert "stream desk-1" in page and "a fine morning" in page
        assert "fall" in page  # the arc of a valence that falls all session
        assert "A wellness indicator, not a diagnosis." in page

        refused, _, why = http(f"{base}api/streams/kiosk-cam/report", bearer(TOKEN))
        assert refused == 404 and b"no scores of this stream" in why  # a person's check
        status, _, body = http(f"{base}api/streams/kiosk-cam/report", bearer(ADMIN_TOKEN))
        assert status == 200 and b"stream kiosk-cam" in body  # the operator may
        for bad in ("..%2F..%2Fetc", "a%00b", "x" * 65):
            status, _, _ = http(f"{base}api/streams/{bad}/report", bearer(TOKEN))
            assert status == 404, bad
    finally:
        pub.close()
        context.term()


def test_the_operator_opens_the_report_of_a_stored_check(processes) -> None:
    store = open_store(processes.env["WELLMON_DASHBOARD_STORE"])
    check = store.start_check("worker-7", kiosk="kiosk", stream="kiosk-1",
                              started_at=time.time() - 60)
    store.add_windows(check, [{k: v for k, v in score("kiosk-1", k, 100.0 + 0.5 * k, 0.5)
                               .items() if k != "transcript"} for k in range(1, 90)])
    store.finish_check(check, {"verdict": "usual", "stress": 52.0}, ended_at=time.time())
    base = ready_url(processes.start("dashboard", "dashboard").ready_line)
    status, headers, body = http(f"{base}api/checks/{check}/report", bearer(ADMIN_TOKEN))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert f"kiosk check {check}" in page and "Stress within your usual range" in page
    assert "Nothing was recognised." in page  # a check keeps no words
    assert http(f"{base}api/checks/{check}/report", bearer(TOKEN))[0] == 403
    assert http(f"{base}api/checks/{check + 1}/report", bearer(ADMIN_TOKEN))[0] == 404


def test_a_report_reloaded_in_a_loop_is_made_once(tmp_path) -> None:
    """A stream's report is made at most once in REPORT_REUSE_S and given again meanwhile,
    so a viewer reloading it cannot keep the dashboard's loop busy making pages."""
    from wellmon.dashboard.person_secrets import PersonSecrets
    from wellmon.dashboard.rest_api import RestApi

    asked = []

    def history(stream: str, sees_private: bool) -> list[dict]:
        asked.append((stream, sees_private))
        return [score(stream, k, 1000.0 + 0.5 * k, 0.3) for k in range(1, 40)]

    store = open_store(tmp_path / "checks.db")
    api = RestApi(store, PersonSecrets(store), lambda: {}, history)
    first = api.stream_report("desk-1", sees_private=False)
    assert api.stream_report("desk-1", sees_private=False) is first
    api.stream_report("desk-1", sees_private=True)  # an admin's has other scores in it
    assert asked == [("desk-1", False), ("desk-1", True)]
    assert first.status_code == 200 and b"stream desk-1" in first.body
