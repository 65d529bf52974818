"""The kiosk's check over its WebSocket, against real processes on the sample clip: the
result is stored before it is shown and, with the person's PIN, compared with their earlier
checks; a dashboard crash leaves the check incomplete, a node crash fails it with a retry.
tests/system/test_kiosk_security.py has the rules of who hears and steers a check, and the PIN."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, open_ws
from wellmon.dashboard.store import open_store
from wellmon.harness import get_json
from wellmon.live_reader import arrivals

STREAM = "kiosk-1"
CHECK_S = 10.0
PIN = "480315"
SAMPLE = str(Path(__file__).resolve().parents[2] / "streamer/sample/sample.mp4")


def start_kiosk(processes, env: dict[str, str]):
    """Node, dashboard and the sample clip as the kiosk's camera, with `env`'s settings
    over the test ones; returns the processes."""
    processes.env = {"WELLMON_DASHBOARD_CHECK_S": str(CHECK_S),
                     "WELLMON_DASHBOARD_KIOSK_STREAM": STREAM, "WELLMON_ASR_ENGINE": "off",
                     **env}
    processes.start("node", "infer")
    processes.start("dashboard", "dashboard")
    for modality in ("video", "audio"):
        processes.start(f"capture-{modality}", "capture", "--modality", modality,
                        "--source", SAMPLE, "--stream", STREAM)
    return processes


@pytest.fixture()
def kiosk(processes, wellmon_env):
    return start_kiosk(processes, wellmon_env)


def kiosk_ws(processes):
    return open_ws(processes.ws_url("ws/kiosk"), KIOSK_TOKEN)


def until(ws, kind: str, timeout: float = 60.0) -> tuple[dict, list[dict]]:
    """The first message of type ``kind``, and every message before it."""
    seen: list[dict] = []
    for _, message in arrivals(ws, timeout):
        if message["type"] == kind:
            return message, seen
        if message["type"] in ("check.failed", "error") and kind.startswith("check."):
            raise AssertionError(f"waiting for {kind}, got {message}")
        seen.append(message)
    raise AssertionError(f"no {kind} in {timeout} s; last: {seen[-3:]}")


def wait_live(ws) -> None:
    hello = json.loads(ws.recv(timeout=10))
    assert hello["type"] == "kiosk.hello" and hello["stream"] == STREAM
    assert hello["stores_media"] is False and hello["duration_s"] == CHECK_S
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message, _ = until(ws, "kiosk.preview")
        if message["stream_state"] == "live" and (message["face"] or 0) > 0.5:
            return
    raise AssertionError("the kiosk's camera never became live with a face")


def kill_during_a_check(processes, person: str) -> dict:
    """Start a check at the kiosk, and kill the dashboard once its first window is in;
    returns the check.started message."""
    with kiosk_ws(processes) as ws:
        wait_live(ws)
        ws.send(json.dumps({"type": "check.start", "person": person, "consent": True}))
        started, _ = until(ws, "check.started")
        until(ws, "check.progress")
        processes.kill("dashboard")
    return started


def utc_day(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).date().isoformat()


def store_path(processes) -> Path:
    return Path(processes.env["WELLMON_DASHBOARD_STORE"])


def enrol(processes, ws, person: str) -> None:
    """The operator issues a code; the person sets PIN with it at the kiosk."""
    url = processes.dashboard_url()
    code = get_json(f"{url}api/persons/{person}/enrolment", ADMIN_TOKEN, method="POST",
                    headers={"X-Wellmon-Confirm": "enrol"})["code"]
    ws.send(json.dumps({"type": "enrol", "person": person, "code": code, "secret": PIN}))
    assert until(ws, "enrolled")[0]["person"] == person


def test_a_check_is_stored_before_it_is_shown_and_compared_with_earlier_checks(kiosk) -> None:
    with kiosk_ws(kiosk) as ws:
        wait_live(ws)
        enrol(kiosk, ws, "worker-7")
        ws.send(json.dumps({"type": "check.start", "person": "worker-7", "consent": True,
                            "secret": PIN}))
        started, _ = until(ws, "check.started")
        shown, progress = until(ws, "check.result", timeout=CHECK_S + 30)
    fractions = [m["fraction"] for m in progress if m["type"] == "check.progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    check = shown["check"]
    assert check["id"] == started["check_id"] and check["status"] == "complete"
    result = check["result"]
    assert result["verdict"] == "inconclusive" and "no usual range yet" in result["reason"]
    assert result["note"] == "A wellness indicator, not a diagnosis."
    assert result["summary"]["heart_rate"] is not None  # the clip's 72 bpm pulse
    assert shown["history"] == [] and shown["personal"] is True and check["in_baseline"]

    with sqlite3.connect(store_path(kiosk)) as db:  # what was shown is on disk
        status, stored = db.execute("SELECT status, result_json FROM checks WHERE id = ?",
                                    (check["id"],)).fetchone()
        windows = db.execute("SELECT COUNT(*) FROM check_windows WHERE check_id = ?",
                             (check["id"],)).fetchone()[0]
    assert status == "complete" and json.loads(stored) == result
    assert windows == result["summary"]["windows"] >= CHECK_S / 0.5 - 2

    # Three earlier checks like this one make a usual range; the next check falls in it.
    store = open_store(store_path(kiosk))
    for k in range(3):
        earlier = store.start_check("worker-7", kiosk="kiosk", stream=STREAM,
                                    started_at=time.time() - 86400 * (k + 1))
        store.finish_check(earlier, {"verdict": "usual", "stress": 50.0,
                                     "summary": result["summary"]},
                           ended_at=time.time() - 86400 * (k + 1) + 45)
    store.close()
    with kiosk_ws(kiosk) as ws:
        wait_live(ws)
        ws.send(json.dumps({"type": "check.start", "person": "worker-7", "consent": True,
                            "secret": PIN}))
        shown, _ = until(ws, "check.result", timeout=CHECK_S + 30)
    second = shown["check"]["result"]
    assert second["verdict"] == "usual", second
    assert second["label"] == "Within your usual range"
    assert 20 < second["stress"] < 75 and second["checks_in_baseline"] == 4
    assert len(shown["history"]) == 4  # the first real check and the three earlier ones

    # /api/checks lists one UTC day (today by default); the two checks may straddle midnight.
    url = kiosk.dashboard_url()
    days = sorted({utc_day(c["started_at"]) for c in (check, shown["check"])}, reverse=True)
    listed = []
    for day in days:
        listed += get_json(f"{url}api/checks?person=worker-7&day={day}",
                           ADMIN_TOKEN)["checks"]
    assert [c["status"] for c in listed[:2]] == ["complete", "complete"]
    with open_store(store_path(kiosk)) as audited:  # the two histories shown, the list read
        trail = [(e["action"], e["role"], e["origin"]) for e in audited.audit_of("worker-7")]
    assert trail[0] == ("read", "admin", "127.0.0.1")
    assert trail.count(("history", "kiosk", "kiosk")) == 2


def test_a_dashboard_crash_during_a_check_leaves_it_incomplete(kiosk) -> None:
    started = kill_during_a_check(kiosk, "worker-8")
    with sqlite3.connect(store_path(kiosk)) as db:
        assert db.execute("SELECT status FROM checks WHERE id = ?",
                          (started["check_id"],)).fetchone()[0] == "running"
    kiosk.start("dashboard", "dashboard")
    url = kiosk.dashboard_url()
    check = get_json(f"{url}api/checks/{started['check_id']}", ADMIN_TOKEN)["check"]
    assert check["status"] == "incomplete"
    assert check["reason"] == "interrupted: the dashboard stopped during the check"
    assert check["windows"]  # the windows stored before the crash are kept


def test_a_node_crash_during_a_check_fails_it_and_offers_a_retry(kiosk) -> None:
    with kiosk_ws(kiosk) as ws:
        wait_live(ws)
        ws.send(json.dumps({"type": "check.start", "person": "worker-9", "consent": True}))
        started, _ = until(ws, "check.started")
        until(ws, "check.progress")
        kiosk.kill("node")
        failed, _ = until(ws, "check.failed", timeout=30)
        assert failed["check_id"] == started["check_id"] and failed["retry"] is True
        assert "inference node stopped sending" in failed["reason"]
        kiosk.start("node", "infer")
        wait_for_live_preview(ws)
        ws.send(json.dumps({"type": "check.start", "person": "worker-9", "consent": True}))
        retried, _ = until(ws, "check.started", timeout=30)
    assert retried["check_id"] != started["check_id"]
    with sqlite3.connect(store_path(kiosk)) as db:
        status, reason = db.execute("SELECT status, reason FROM checks WHERE id = ?",
                                    (started["check_id"],)).fetchone()
    assert status == "failed" and "inference node" in reason


def wait_for_live_preview(ws) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message, _ = until(ws, "kiosk.preview")
        if message["stream_state"] == "live":
            return
    raise AssertionError("the stream did not come back")


def test_on_a_postgresql_store_a_check_is_in_the_database_before_it_is_shown(
        processes, wellmon_env, postgres, postgres_url) -> None:
    """`store.url` puts the checks in PostgreSQL: the result shown is there, with its
    windows as JSONB; a dashboard killed during a check finds it at its restart and records
    it as incomplete."""
    import psycopg

    start_kiosk(processes, {**wellmon_env, "WELLMON_STORE_URL": postgres_url,
                            "PGPASSFILE": str(postgres.passfile)})
    with kiosk_ws(processes) as ws:
        wait_live(ws)
        ws.send(json.dumps({"type": "check.start", "person": "worker-9", "consent": True}))
        shown, _ = until(ws, "check.result", timeout=CHECK_S + 30)
    check = shown["check"]
    with psycopg.connect(postgres_url) as db:
        status, stored = db.execute("SELECT status, result_json FROM checks WHERE id = %s",
                                    (check["id"],)).fetchone()
        windows = db.execute("SELECT COUNT(*), MIN(jsonb_typeof(window_json)) FROM "
                             "check_windows WHERE check_id = %s", (check["id"],)).fetchone()
    assert status == "complete" and stored == check["result"]
    assert windows == (check["result"]["summary"]["windows"], "object")

    started = kill_during_a_check(processes, "worker-9")
    processes.start("dashboard", "dashboard")
    check = get_json(f"{processes.dashboard_url()}api/checks/{started['check_id']}",
                     ADMIN_TOKEN)["check"]
    assert check["status"] == "incomplete" and check["windows"]
    assert check["reason"] == "interrupted: the dashboard stopped during the check"
