"""The kiosk's checks inside the dashboard: start, collect windows, store, show.

The dashboard does not compute anything about a person: it collects the node's score
messages of the kiosk's stream for ``check_s`` seconds, stores each window as it arrives,
and asks ``models.stress.verdict.result()`` for the verdict. The result is committed to the store
*before* it is sent to the kiosk, so what a person was shown is always on disk. A check
whose windows stop coming (the node or the camera went away) fails with the reason and
the kiosk offers a retry; a check cut short by the dashboard itself stopping is marked
incomplete at the next start (``Store.mark_interrupted``).

A check is *personal* when the person proved their secret (dashboard/person_secrets.py):
then it is compared with their earlier checks, shows them and joins their baseline. Without
it the check is stored with ``in_baseline`` false and compared with nothing.

What is stored of each window is the score message without the words the person said:
``transcript`` (speech-to-text, with each utterance's text) is dropped before the window is
kept or used (``PRIVATE_KEYS``); the verdict needs only the signals, emotions and quality.
The kiosk's hello states these facts, and its consent screen is written from them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from wellmon.dashboard.store import Store, StoreError
from wellmon.models.stress import verdict as check_model

PERSON = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}")
"""A person ID, matched whole (``fullmatch``: no trailing newline slips through); "." and
".." are refused (a browser would read them as path segments)."""
ID_RULE = "the ID must be 1 to 64 letters, digits, '.', '_' or '-'"
"""What a refused person ID is told, wherever it is refused."""
PRIVATE_KEYS = ("transcript",)
"""Keys of a score message never stored with a check: the words the person said."""
STORES_TRANSCRIPT = False
STALL_S = 5.0
"""No window of the kiosk's stream for this long during a check: the node is gone."""
SENTENCE = ("The quick brown fox jumps over the lazy dog, and today I am ready for my "
            "shift.")


STORE_UNAVAILABLE = ("The check store is not available right now: the check cannot start. "
                     "Please try again in a moment.")
STORE_LOST = "the check store became unavailable: the check could not be stored"
RETRY_STORE_S = 5.0


class CheckError(ValueError):
    """A request the kiosk may not make now; the message is shown to the person. ``code``
    tells the page where: request (malformed), busy, camera, secret, new_secret, enrol,
    store (the check store cannot be reached)."""

    def __init__(self, message: str, code: str = "request") -> None:
        super().__init__(message)
        self.code = code


def valid_person(person: object) -> bool:
    return isinstance(person, str) and PERSON.fullmatch(person) is not None


def redact(score: dict[str, Any]) -> dict[str, Any]:
    """The score message as a check keeps it: without the person's words."""
    return {k: v for k, v in score.items() if k not in PRIVATE_KEYS}


@dataclass
class Running:
    """``started_at`` is the wall clock (the store's); ``t0`` the stream's capture clock at
    the start (its last window's end), which times the check, whatever the capture clock's
    offset from the wall clock."""

    id: int
    person: str
    started_at: float
    t0: float
    last_window_at: float
    personal: bool = False
    windows: list[dict[str, Any]] = field(default_factory=list)


class KioskChecks:
    """At most one check at a time: the kiosk has one camera."""

    def __init__(self, store: Store, kiosk: str, stream: str | None, duration_s: float,
                 stall_s: float = STALL_S) -> None:
        self.store = store
        self.kiosk = kiosk
        self.configured_stream = stream
        self.stream: str | None = stream
        self.duration_s = duration_s
        self.stall_s = stall_s
        self.running: Running | None = None
        self.last_score: dict[str, Any] | None = None
        self.site_kiosk_streams: frozenset[str] = frozenset()
        """Other dashboards' kiosk cameras on the same store: private here too."""
        self.unrecorded: list[Ending] = []
        """Checks that ended while the store was unavailable, recorded at a later tick."""
        self._next_store_try = 0.0

    def hello(self, retention_days: float) -> dict[str, Any]:
        """What the kiosk page shows before a check, its consent text included: every fact
        about what is kept comes from here."""
        return {"type": "kiosk.hello", "kiosk": self.kiosk, "stream": self.stream,
                "duration_s": self.duration_s, "sentence": SENTENCE,
                "retention_days": retention_days, "stores_media": False,
                "stores_transcript": STORES_TRANSCRIPT, "history_needs_secret": True,
                "stream_state": self.stream_state()}

    def stream_state(self) -> str:
        return self.last_score["state"] if self.last_score else "absent"

    def is_private(self, stream: str) -> bool:
        """Whether the scores of ``stream`` are for admins' pages only. A person's check
        reaches that person and the operator, not the viewers: the kiosk's stream is private
        when it is configured (the kiosk camera), and while a check runs on the stream the
        kiosk adopted (the demo's only stream)."""
        if stream in self.site_kiosk_streams:
            return True
        if stream != (self.configured_stream or self.stream):
            return False
        return self.configured_stream is not None or self.running is not None

    def request(self, message: dict[str, Any]) -> tuple[str, str | None]:
        """The person and the secret (None: none entered) of a well-formed ``check.start``
        with consent; CheckError otherwise. Says nothing about whether the person exists."""
        person = message.get("person")
        if not valid_person(person):
            raise CheckError(ID_RULE)
        if message.get("consent") is not True:
            raise CheckError("a check needs the person's consent")
        secret = message.get("secret")
        if secret is not None and not isinstance(secret, str):
            raise CheckError("the PIN must be text", "secret")
        assert isinstance(person, str)
        return person, secret

    def ready(self) -> None:
        """CheckError unless a check could start now (none running, the camera live)."""
        if self.running is not None:
            raise CheckError("a check is already running", "busy")
        if self.stream_state() != "live":
            raise CheckError("the camera is not sending: the check cannot start", "camera")

    def start(self, person: str, now: float, personal: bool = False) -> dict[str, Any]:
        """Open the check in the store. ``personal``: the person proved their secret."""
        if not valid_person(person):
            raise CheckError(ID_RULE)
        self.ready()
        try:
            check_id = self.store.start_check(person, kiosk=self.kiosk,
                                              stream=self.stream or "", started_at=now,
                                              in_baseline=personal)
        except StoreError:
            raise CheckError(STORE_UNAVAILABLE, "store") from None
        assert self.last_score is not None  # the stream is live
        self.running = Running(check_id, person, now, self.last_score["t_end"], now,
                               personal=personal)
        return {"type": "check.started", "check_id": check_id, "duration_s": self.duration_s,
                "sentence": SENTENCE, "personal": personal}

    def cancel(self, now: float, reason: str = "the check was cancelled"
               ) -> list[dict[str, Any]]:
        if self.running is None:
            return []
        return self._fail(reason, now, status="incomplete")

    def on_score(self, score: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """Messages for the kiosk caused by one score message of any stream."""
        if self.stream is None and score["stream"] not in self.site_kiosk_streams:
            self.stream = score["stream"]  # adopted: never another dashboard's kiosk camera
        if score["stream"] != self.stream:
            return []
        self.last_score = score
        face, brightness = _face_and_brightness(score)
        hint = check_model.hint(face, brightness, score["state"])
        run = self.running
        if run is None:
            return [{"type": "kiosk.preview", "stream_state": score["state"], "face": face,
                     "brightness": brightness, "hint": hint}]
        busy = {"type": "kiosk.preview", "stream_state": score["state"], "face": None,
                "brightness": None, "hint": "A check is running on this kiosk: please wait.",
                "busy": True}  # for the kiosk's other screens, if any: nothing of the person
        if score["state"] == "lost":  # stale is a hiccup; its windows say so in quality
            return self._fail("the camera stopped sending: the check could not finish", now)
        if score["t_end"] <= run.t0:
            return [busy]
        kept = redact(score)
        try:
            self.store.add_windows(run.id, [kept])
        except StoreError:
            return self._fail(STORE_LOST, now, status="incomplete")
        run.windows.append(kept)
        run.last_window_at = now
        elapsed = min(self.duration_s, score["t_end"] - run.t0)
        progress = {"type": "check.progress", "check_id": run.id, "elapsed_s": round(elapsed, 2),
                    "fraction": round(elapsed / self.duration_s, 4),
                    "windows": len(run.windows), "face": face, "brightness": brightness,
                    "hint": hint}
        if elapsed < self.duration_s:
            return [progress, busy]
        return [progress, self._finish(now)]

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Fails a check whose windows stopped coming; records the endings the store could
        not take when they happened."""
        self._record_endings()
        run = self.running
        if run is not None and now - run.last_window_at > self.stall_s:
            return self._fail("the inference node stopped sending: the check could not "
                              "finish", now)
        return []

    def _finish(self, now: float) -> dict[str, Any]:
        run = self.running
        assert run is not None
        history = []
        try:
            if run.personal:
                history = self.store.person_history(
                    run.person, limit=check_model.HISTORY_CHECKS, before=run.started_at)
                self.store.record_audit("history", run.person, role="kiosk",
                                        origin=self.kiosk, now=now)
            result = check_model.result(run.windows, history, compare=run.personal)
            stored = self.store.finish_check(run.id, result, ended_at=now)
        except StoreError:  # nothing is shown that is not stored
            return self._fail(STORE_LOST, now, status="incomplete")[0]
        self.running = None
        return {"type": "check.result", "check": stored, "personal": run.personal,
                "history": [{"id": h["id"], "started_at": h["started_at"],
                             "status": h.get("status", "complete"),
                             "result": {k: (h.get("result") or {}).get(k)
                                        for k in ("verdict", "stress", "label")}}
                            for h in history]}

    def _record_endings(self) -> None:
        """Record the endings the store could not take (a check a peer or a restart has
        closed meanwhile is left as it is); those it still cannot take wait, tried again at
        most every RETRY_STORE_S (a store that cannot be reached may take its connection
        timeout to say so, on the dashboard's one loop)."""
        if not self.unrecorded or time.monotonic() < self._next_store_try:
            return
        self._next_store_try = time.monotonic() + RETRY_STORE_S
        waiting = []
        for ending in self.unrecorded:
            try:
                check = self.store.get_check(ending.check_id, with_windows=False)
                if check is not None and check["status"] == "running":
                    self.store.fail_check(ending.check_id, ending.reason, ending.at,
                                          status=ending.status)
            except StoreError:
                waiting.append(ending)
        self.unrecorded = waiting

    def _fail(self, reason: str, now: float, status: str = "failed") -> list[dict[str, Any]]:
        run = self.running
        assert run is not None
        self.running = None
        self.unrecorded.append(Ending(run.id, reason, now, status))
        self._next_store_try = 0.0
        self._record_endings()
        return [{"type": "check.failed", "check_id": run.id, "reason": reason, "retry": True}]


@dataclass(frozen=True)
class Ending:
    """A check that ended while the store could not record it: recorded when it can."""

    check_id: int
    reason: str
    at: float
    status: str


def _face_and_brightness(score: dict[str, Any]) -> tuple[float | None, float | None]:
    face = ((score.get("quality") or {}).get("face") or {}).get("present")
    brightness = (score.get("signals") or {}).get("brightness")
    return face, brightness
