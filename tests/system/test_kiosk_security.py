"""Issue 21, the kiosk's findings, against a real dashboard on real sockets. A fake node
publishes score messages (with a transcript) on the node's address, on a capture clock that
runs ahead of the wall clock, so a check takes about a second: one socket's check is not
heard by another (1) nor cancelled by it (7); a person's history needs their PIN, set with
an operator's one-time code (2); IDs are matched whole and percent-decoded (8); bad API
input is 400/404 and the store is private (11); no words are stored (12)."""

from __future__ import annotations

import json
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, TOKEN, open_ws
from wellmon.dashboard.person_secrets import WRONG_SECRET
from wellmon.live_reader import arrivals, read_for, scores_in
from wellmon.streamer.wire.protocol import encode_score

STREAM = "kiosk-1"
CHECK_S = 6.0
WORDS = "my bank PIN is four four one nine"
PIN = "480315"


class FakeNode:
    """Publishes the kiosk stream's score messages, ``rate`` a second, each 0.5 s of
    capture time later than the last, with a face, a pulse, a voice and a transcript."""

    def __init__(self, address: str) -> None:
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(address)
        self.rate = 20.0
        self.seq = 0
        self.t_end = time.time()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def score(self) -> dict:
        self.seq += 1
        self.t_end += 0.5
        k = self.seq
        return {
            "stream": STREAM, "seq": k, "t_start": self.t_end - 4.0, "t_end": self.t_end,
            "state": "live", "v": 1,
            "signals": {"heart_rate": 70.0 + k % 3, "hrv_rmssd": 45.0, "blink_rate": 15.0,
                        "f0_mean": 120.0 + k % 4, "jitter": 1.0, "brightness": 0.45,
                        "sentiment": 0.1},
            "emotions": {"angry": 0.01, "disgust": 0.01, "fear": 0.01, "happy": 0.05,
                         "sad": 0.02, "surprise": 0.02, "neutral": 0.88},
            "quality": {"face": {"present": 1.0, "confidence": 0.9}},
            "latency_ms": {}, "stress": 50.0, "drivers": [], "reasons": {},
            "transcript": [{"text": WORDS, "final": True, "t_start": self.t_end - 2,
                            "t_end": self.t_end - 1, "sentiment": 0.1}],
        }

    def _run(self) -> None:
        while not self.stop.is_set():
            self.sock.send_multipart(encode_score(self.score()))
            self.stop.wait(1.0 / self.rate)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        self.context.term()


@pytest.fixture()
def rig(processes, wellmon_env):
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_CHECK_S": str(CHECK_S),
                     "WELLMON_DASHBOARD_KIOSK_STREAM": STREAM}
    node = FakeNode(wellmon_env["WELLMON_NODE_OUTPUT"])
    processes.start("dashboard", "dashboard")
    yield Rig(processes, node)
    node.close()


class Rig:
    def __init__(self, processes, node: FakeNode) -> None:
        self.processes = processes
        self.node = node

    @property
    def url(self) -> str:
        return self.processes.dashboard_url()

    @property
    def store(self) -> Path:
        return Path(self.processes.env["WELLMON_DASHBOARD_STORE"])

    @contextmanager
    def kiosk(self, token: str = KIOSK_TOKEN) -> Iterator:
        """A kiosk socket, once its hello came and the stream is live."""
        with open_ws(self.processes.ws_url("ws/kiosk"), token) as ws:
            hello = recv(ws)
            assert hello["type"] == "kiosk.hello", hello
            wait_live(ws)
            yield ws

    def api(self, path: str, token: str = ADMIN_TOKEN, method: str = "GET",
            confirm: str | None = None) -> tuple[int, dict | None]:
        headers = {"Authorization": f"Bearer {token}"}
        if confirm:
            headers["X-Wellmon-Confirm"] = confirm
        request = urllib.request.Request(self.url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def issue_code(self, person: str) -> str:
        status, body = self.api(f"api/persons/{person}/enrolment", method="POST",
                                confirm="enrol")
        assert status == 200 and body is not None, (status, body)
        return body["code"]

    def restart_dashboard(self) -> None:
        self.processes.kill("dashboard")
        self.processes.start("dashboard", "dashboard")


def recv(ws, timeout: float = 30.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def until(ws, kinds: str | tuple[str, ...], timeout: float = 60.0) -> tuple[dict, list[dict]]:
    """The first message whose type is one of ``kinds``, and every message before it."""
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    seen: list[dict] = []
    for _, message in arrivals(ws, timeout):
        if message["type"] in kinds:
            return message, seen
        seen.append(message)
    raise AssertionError(f"no {kinds} in {timeout} s; last: {seen[-3:]}")


def wait_live(ws) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        preview, _ = until(ws, "kiosk.preview")
        if preview["stream_state"] == "live" and not preview.get("busy"):
            return
    raise AssertionError("the kiosk's stream never became live")


def start(ws, person: str, secret: str | None = None) -> dict:
    """Send check.start; the server's answer (check.started or error)."""
    message = {"type": "check.start", "person": person, "consent": True}
    if secret is not None:
        message["secret"] = secret
    ws.send(json.dumps(message))
    answer, _ = until(ws, ("check.started", "error"))
    return answer


def run_check(ws, person: str, secret: str | None = None) -> dict:
    """A whole check; its check.result."""
    started = start(ws, person, secret)
    assert started["type"] == "check.started", started
    result, _ = until(ws, ("check.result", "check.failed"), timeout=CHECK_S + 60)
    assert result["type"] == "check.result", result
    assert result["check"]["id"] == started["check_id"]
    return result


def enrol(ws, person: str, code: str, secret: str) -> dict:
    ws.send(json.dumps({"type": "enrol", "person": person, "code": code, "secret": secret}))
    answer, _ = until(ws, ("enrolled", "error"))
    return answer


def until_idle(ws) -> list[dict]:
    """Every message up to the first preview that says no check runs after one that said a
    check runs (a socket's messages arrive in order: nothing of that check can follow)."""
    seen = []
    busy = False  # or a check's end was heard (which this socket should not hear at all)
    for _, message in arrivals(ws, 60):
        seen.append(message)
        if message["type"] == "kiosk.preview":
            if busy and not message.get("busy"):
                return seen
        busy = busy or bool(message.get("busy")) or message["type"] in ("check.result",
                                                                         "check.failed")
    raise AssertionError(f"the kiosk did not become idle; last: {seen[-3:]}")


# -- finding 1: one socket's check is not heard by another --------------------------------

def test_a_check_is_heard_only_by_the_socket_that_started_it(rig) -> None:
    with rig.kiosk() as owner, rig.kiosk() as other:
        shown = run_check(owner, "alice-4711")
        assert shown["check"]["person_id"] == "alice-4711"
        heard = until_idle(other)
    kinds = {m["type"] for m in heard}
    assert not {k for k in kinds if k.startswith("check.")}, kinds
    assert "alice-4711" not in json.dumps(heard)
    busy = [m for m in heard if m.get("busy")]
    assert busy, kinds  # it heard that the kiosk was busy, and nothing of the person
    assert all(m["face"] is None and m["brightness"] is None for m in busy)


# -- finding 7: only the socket that started a check may cancel it --------------------------

def test_another_socket_cannot_cancel_the_check(rig) -> None:
    rig.node.rate = 2.0  # real time: the check lasts CHECK_S
    with rig.kiosk() as owner, rig.kiosk() as other:
        started = start(owner, "bob-1")
        assert started["type"] == "check.started"
        other.send(json.dumps({"type": "check.cancel"}))
        refused, _ = until(other, ("error", "pong"))
        assert refused["type"] == "error", refused
        assert refused["code"] == "busy" and "started this check" in refused["reason"]
        progress, _ = until(owner, "check.progress")  # still running
        assert progress["check_id"] == started["check_id"]
        owner.send(json.dumps({"type": "check.cancel"}))
        failed, _ = until(owner, "check.failed")
        assert failed["check_id"] == started["check_id"] and "cancelled" in failed["reason"]
        assert not [m for m in until_idle(other) if m["type"].startswith("check.")]
    status, body = rig.api(f"api/checks/{started['check_id']}")
    assert status == 200 and body["check"]["status"] == "incomplete"


# -- finding 8: IDs matched whole; the operator's DELETE percent-decodes ---------------------

def test_ids_are_matched_whole_and_deleted_by_their_encoded_path(rig) -> None:
    with rig.kiosk() as ws:
        for bad in ("alice\n", "alice\r", " alice", "..", "a" * 65):
            refused = start(ws, bad)
            assert refused["type"] == "error" and refused["code"] == "request", (bad, refused)
        run_check(ws, "alice.4711")
    assert rig.api("api/checks?person=alice%0A")[0] == 400
    assert rig.api("api/persons/alice%0A", method="DELETE", confirm="delete")[0] == 404
    status, body = rig.api("api/persons/alice%2E4711", method="DELETE", confirm="delete")
    assert (status, body) == (200, {"deleted_checks": 1})
    assert rig.api("api/persons/alice.4711")[1]["known"] is False


# -- finding 11: bad input is 400/404, never 500; the store is private ------------------------

def test_bad_api_input_gets_400_or_404_never_500(rig) -> None:
    cases = {
        "api/checks?status=bogus": 400,
        "api/checks?day=yesterday": 400,
        "api/checks?person=" + "x" * 65: 400,
        "api/checks/" + "9" * 25: 404,
        "api/checks/9223372036854775808": 404,
        "api/checks/-1": 404,
        "api/checks/1x": 404,
        "api/persons/%FF%FE": 404,
        "api/persons/a/b/c": 404,
        "api/persons/a/nothing": 404,
    }
    for path, expected in cases.items():
        status, body = rig.api(path)
        assert status == expected and body and "error" in body, (path, status, body)
    assert rig.api("api/persons/a/enrolment")[0] == 405  # GET of a POST route
    assert rig.api("api/checks", method="POST")[0] == 405
    rig.processes.stop_all()
    log = (rig.processes.logs / "dashboard.log").read_text()
    assert "Traceback" not in log and "Internal Server Error" not in log


def test_the_store_and_its_wal_are_private(rig) -> None:
    with rig.kiosk() as ws:
        run_check(ws, "carol-2")
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{rig.store}{suffix}")
            assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600, suffix


# -- finding 12: no words the person said are stored --------------------------------------------

def test_no_transcript_is_stored_and_the_hello_says_so(rig) -> None:
    with rig.kiosk() as ws:
        shown = run_check(ws, "dave-3")
    status, body = rig.api(f"api/checks/{shown['check']['id']}")
    windows = body["check"]["windows"]
    assert status == 200 and len(windows) >= CHECK_S / 0.5 - 1
    assert all("transcript" not in w for w in windows)
    assert all(w["signals"]["heart_rate"] for w in windows)  # what the verdict needs stays
    for suffix in ("", "-wal"):
        path = Path(f"{rig.store}{suffix}")
        if path.exists():
            assert WORDS.encode() not in path.read_bytes(), suffix
    with open_ws(rig.processes.ws_url("ws/kiosk"), KIOSK_TOKEN) as ws:
        hello = recv(ws)
    assert hello["stores_media"] is False and hello["stores_transcript"] is False
    assert hello["history_needs_secret"] is True
    assert hello["secrets"]["pin_min_digits"] == 6 and hello["secrets"]["max_failures"] == 5


# -- finding 2: a person's history behind their own secret -------------------------------------

def test_history_and_baseline_need_the_pin_set_with_a_one_time_code(rig) -> None:
    person = "erin-5"
    code = rig.issue_code(person)
    with rig.kiosk() as ws:
        assert enrol(ws, person, "0000 0000 0000", PIN)["code"] == "enrol"
        weak = enrol(ws, person, code, "123456")
        assert weak["code"] == "new_secret" and "easy to guess" in weak["reason"]
        assert enrol(ws, person, code, PIN) == {"type": "enrolled", "person": person}
        reused = enrol(ws, person, code, "905127")  # single use
        assert reused["code"] == "enrol"

        first = run_check(ws, person, PIN)
        assert first["personal"] is True and first["history"] == []
        second = run_check(ws, person, PIN)
        assert [h["id"] for h in second["history"]] == [first["check"]["id"]]

        anonymous = run_check(ws, person)  # no PIN: measured, not compared, no history
        assert anonymous["personal"] is False and anonymous["history"] == []
        result = anonymous["check"]["result"]
        assert result["label"] == "Not compared" and result["stress"] is None
        assert result["checks_in_baseline"] == 0 and result["compared"] is False
        assert anonymous["check"]["in_baseline"] is False

        third = run_check(ws, person, PIN)
    assert [h["id"] for h in third["history"]] == [second["check"]["id"],
                                                   first["check"]["id"]]
    assert third["check"]["result"]["checks_in_baseline"] == 2
    status, body = rig.api(f"api/persons/{person}")
    assert status == 200 and body["secret_set"] is True and body["code_expires_at"] is None
    assert (body["checks"], body["checks_in_baseline"]) == (4, 3)


def test_five_wrong_pins_lock_the_id_across_a_restart_and_reveal_nothing(rig) -> None:
    person = "frank-6"
    with rig.kiosk() as ws:
        assert enrol(ws, person, rig.issue_code(person), PIN)["type"] == "enrolled"
        run_check(ws, "gina-7")  # a person with checks but no secret
        answers = {}
        for who in (person, "gina-7", "nobody-at-all"):  # secret, no secret, no such ID
            answers[who] = [start(ws, who, "999111") for _ in range(5)]
        for who, got in answers.items():
            assert [a["type"] for a in got] == ["error"] * 5, who
            assert [a["reason"] for a in got[:4]] == [WRONG_SECRET] * 4, who
            assert got[4]["code"] == "locked" and "locked for 15 more minutes" in got[4]["reason"]
        assert answers[person] == answers["gina-7"] == answers["nobody-at-all"]
        locked = start(ws, person, PIN)  # the right PIN, while locked
        assert locked["code"] == "locked"
        assert start(ws, person)["type"] == "check.started"  # a check without PIN still runs
        until(ws, "check.result", timeout=CHECK_S + 60)
    rig.restart_dashboard()
    with rig.kiosk() as ws:
        assert start(ws, person, PIN)["code"] == "locked"  # the lock is in the store
    status, body = rig.api(f"api/persons/{person}")
    assert body["locked_until"] > time.time() and body["failures"] == 5

    # The operator resets the secret (which lifts the lock) and issues a new code.
    assert rig.api(f"api/persons/{person}/secret", method="DELETE")[0] == 400  # no confirm
    status, body = rig.api(f"api/persons/{person}/secret", method="DELETE", confirm="reset")
    assert (status, body) == (200, {"reset": True, "secret_was_set": True})
    with rig.kiosk() as ws:
        assert start(ws, person, PIN)["reason"] == WRONG_SECRET  # the old PIN is gone
        assert enrol(ws, person, rig.issue_code(person), "271828")["type"] == "enrolled"
        assert run_check(ws, person, "271828")["personal"] is True


def test_a_kiosk_or_viewer_token_cannot_list_people_or_touch_secrets(rig) -> None:
    rig.issue_code("hana-8")
    for token in (KIOSK_TOKEN, TOKEN):
        for path, method, confirm in (("api/persons/hana-8", "GET", None),
                                      ("api/persons/hana-8/enrolment", "POST", "enrol"),
                                      ("api/persons/hana-8/secret", "DELETE", "reset"),
                                      ("api/persons/hana-8", "DELETE", "delete"),
                                      ("api/checks", "GET", None),
                                      ("api/persons", "GET", None)):
            status, _ = rig.api(path, token, method, confirm)
            assert status == 403, (token, path, method, status)
    assert rig.api("api/persons/hana-8")[1]["code_expires_at"] > time.time()



def live_scores(ws, seconds: float) -> list[dict]:
    """Every score a live-page socket receives (history and live) in ``seconds``."""
    return [score for _, score in scores_in(read_for(ws, seconds))]


def test_the_kiosk_camera_reaches_the_operator_and_never_a_viewer(rig) -> None:
    """A person's check reaches that person and the operator: with dashboard.kiosk_stream
    set, the kiosk's stream is never on a viewer's live page, history or live."""
    url = rig.processes.ws_url()
    with rig.kiosk() as kiosk, open_ws(url, TOKEN) as viewer, open_ws(url, ADMIN_TOKEN) as admin:
        assert start(kiosk, "p-live")["type"] == "check.started"
        seen_by_viewer = live_scores(viewer, 3.0)
        seen_by_admin = live_scores(admin, 3.0)
    assert not [s for s in seen_by_viewer if s["stream"] == STREAM]
    assert [s for s in seen_by_admin if s["stream"] == STREAM]
    with open_ws(url, TOKEN) as later:  # and not in a later history
        assert not [s for s in live_scores(later, 2.0) if s["stream"] == STREAM]


def test_the_adopted_stream_is_hidden_from_viewers_while_a_check_runs(processes,
                                                                      wellmon_env) -> None:
    """Without dashboard.kiosk_stream (the demo: the kiosk adopts the only stream), viewers
    see the stream between checks and nothing of it while a check runs."""
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_CHECK_S": "60"}
    node = FakeNode(wellmon_env["WELLMON_NODE_OUTPUT"])
    try:
        processes.start("dashboard", "dashboard")
        rig = Rig(processes, node)
        with open_ws(processes.ws_url(), TOKEN) as viewer:
            assert [s for s in live_scores(viewer, 2.0) if s["stream"] == STREAM]
            with rig.kiosk() as kiosk:
                assert start(kiosk, "p-demo")["type"] == "check.started"
                started_after = node.t_end  # published later: while the check ran
                during = live_scores(viewer, 3.0)
                assert not [s for s in during
                            if s["stream"] == STREAM and s["t_end"] > started_after]
                assert node.t_end > started_after + 1  # the node did publish meanwhile
                kiosk.send(json.dumps({"type": "check.cancel"}))
                until(kiosk, "check.failed")
            assert [s for s in live_scores(viewer, 3.0) if s["stream"] == STREAM]
    finally:
        node.close()
