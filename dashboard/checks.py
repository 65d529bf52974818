"""The kiosk's checks inside the dashboard: start, collect windows, store, show.

The dashboard does not compute anything about a person: it collects the node's score
messages of the kiosk's stream for ``check_s`` seconds, stores each window as it arrives,
and asks ``models.check.result()`` for the verdict. The result is committed to the store
*before* it is sent to the kiosk, so what a person was shown is always on disk. A check
whose windows stop coming (the node or the camera went away) fails with the reason and
the kiosk offers a retry; a check cut short by the dashboard itself stopping is marked
incomplete at the next start (``Store.mark_interrupted``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dashboard.store import Store
from models import check as check_model

PERSON = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
STALL_S = 5.0
"""No window of the kiosk's stream for this long during a check: the node is gone."""
SENTENCE = ("The quick brown fox jumps over the lazy dog, and today I am ready for my "
            "shift.")


class CheckError(ValueError):
    """A request the kiosk may not make now; the message is shown to the person."""


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

    def hello(self, retention_days: float) -> dict[str, Any]:
        return {"type": "kiosk.hello", "kiosk": self.kiosk, "stream": self.stream,
                "duration_s": self.duration_s, "sentence": SENTENCE,
                "retention_days": retention_days, "stores_media": False,
                "stream_state": self.stream_state()}

    def stream_state(self) -> str:
        return self.last_score["state"] if self.last_score else "absent"

    def start(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        """Validate a ``check.start`` and open the check in the store."""
        person = message.get("person")
        if not isinstance(person, str) or not PERSON.match(person):
            raise CheckError("the ID must be 1 to 64 letters, digits, '.', '_' or '-'")
        if message.get("consent") is not True:
            raise CheckError("a check needs the person's consent")
        if self.running is not None:
            raise CheckError("a check is already running")
        if self.stream_state() != "live":
            raise CheckError("the camera is not sending: the check cannot start")
        check_id = self.store.start_check(person, kiosk=self.kiosk, stream=self.stream or "",
                                          started_at=now)
        assert self.last_score is not None  # the stream is live
        self.running = Running(check_id, person, now, self.last_score["t_end"], now)
        return {"type": "check.started", "check_id": check_id, "duration_s": self.duration_s,
                "sentence": SENTENCE}

    def cancel(self, now: float, reason: str = "the check was cancelled"
               ) -> list[dict[str, Any]]:
        if self.running is None:
            return []
        return self._fail(reason, now, status="incomplete")

    def on_score(self, score: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """Messages for the kiosk caused by one score message of any stream."""
        if self.stream is None:
            self.stream = score["stream"]
        if score["stream"] != self.stream:
            return []
        self.last_score = score
        face, brightness = _face_and_brightness(score)
        hint = check_model.hint(face, brightness, score["state"])
        run = self.running
        if run is None:
            return [{"type": "kiosk.preview", "stream_state": score["state"], "face": face,
                     "brightness": brightness, "hint": hint}]
        if score["state"] == "lost":  # stale is a hiccup; its windows say so in quality
            return self._fail("the camera stopped sending: the check could not finish", now)
        if score["t_end"] <= run.t0:
            return []
        run.windows.append(score)
        run.last_window_at = now
        self.store.add_windows(run.id, [score])
        elapsed = min(self.duration_s, score["t_end"] - run.t0)
        progress = {"type": "check.progress", "check_id": run.id, "elapsed_s": round(elapsed, 2),
                    "fraction": round(elapsed / self.duration_s, 4),
                    "windows": len(run.windows), "face": face, "brightness": brightness,
                    "hint": hint}
        if elapsed < self.duration_s:
            return [progress]
        return [progress, self._finish(now)]

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Fails a check whose windows stopped coming."""
        run = self.running
        if run is not None and now - run.last_window_at > self.stall_s:
            return self._fail("the inference node stopped sending: the check could not "
                              "finish", now)
        return []

    def _finish(self, now: float) -> dict[str, Any]:
        run = self.running
        assert run is not None
        history = self.store.person_history(run.person, limit=check_model.HISTORY_CHECKS,
                                            before=run.started_at)
        result = check_model.result(run.windows, history)
        stored = self.store.finish_check(run.id, result, ended_at=now)
        self.running = None
        return {"type": "check.result", "check": stored,
                "history": [{"id": h["id"], "started_at": h["started_at"],
                             "status": h.get("status", "complete"),
                             "result": {k: (h.get("result") or {}).get(k)
                                        for k in ("verdict", "stress", "label")}}
                            for h in history]}

    def _fail(self, reason: str, now: float, status: str = "failed") -> list[dict[str, Any]]:
        run = self.running
        assert run is not None
        self.store.fail_check(run.id, reason, ended_at=now, status=status)
        self.running = None
        return [{"type": "check.failed", "check_id": run.id, "reason": reason, "retry": True}]


def _face_and_brightness(score: dict[str, Any]) -> tuple[float | None, float | None]:
    face = ((score.get("quality") or {}).get("face") or {}).get("present")
    brightness = (score.get("signals") or {}).get("brightness")
    return face, brightness
