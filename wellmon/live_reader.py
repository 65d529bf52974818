"""Reading the dashboard's WebSocket as a program: for benchmarks and tests.

`open_dashboard_ws` connects with a role's token (a Bearer header, as programs sign in).
`arrivals` is the one reading loop: each JSON message with the wall clock at its arrival,
for a time or until told to stop. On top of it, `read_for`, `read_until` and
`scores_until` read in the caller's thread, and `LiveReader` reads in a thread of its own
for as long as a benchmark or test runs (a subclass keeps what it needs of each message).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Arrival = tuple[float, dict[str, Any]]
"""A message of the dashboard's WebSocket and the wall clock (time.time()) at its arrival."""
POLL_S = 0.5
"""How often a reader that has a stop event looks at it while nothing arrives."""


def bearer(token: str) -> dict[str, str]:
    """The header a program (not a browser) shows the dashboard its role's token with."""
    return {"Authorization": f"Bearer {token}"}


def open_dashboard_ws(url: str, token: str, **options: Any) -> Any:
    """A WebSocket to the dashboard at ``url`` (ws://…/ws or …/ws/kiosk), signed in with
    ``token``; no size limit on what it receives."""
    from websockets.sync.client import connect

    return connect(url, additional_headers=bearer(token), max_size=None,
                   **{"open_timeout": 10, **options})


def arrivals(ws: Any, seconds: float | None = None, *, stop: threading.Event | None = None,
             silence_s: float | None = None) -> Iterator[Arrival]:
    """Each JSON message of the sync WebSocket ``ws`` with the wall clock at its arrival:
    for ``seconds`` (None: no limit), until ``stop`` is set (looked at every POLL_S) or
    until the socket closes (websockets raises ConnectionClosed). ``silence_s``: raise
    TimeoutError when nothing arrives for that long."""
    deadline = math.inf if seconds is None else time.monotonic() + seconds
    heard = time.monotonic()
    while not (stop is not None and stop.is_set()):
        now = time.monotonic()
        if now >= deadline:
            return
        wait = min(deadline - now, POLL_S if stop is not None else math.inf,
                   heard + silence_s - now if silence_s is not None else math.inf)
        try:
            raw = ws.recv(timeout=None if wait == math.inf else max(0.0, wait))
        except TimeoutError:
            if silence_s is not None and time.monotonic() - heard >= silence_s:
                raise TimeoutError(f"no message from the dashboard in {silence_s:g} s") from None
            continue
        heard = time.monotonic()
        yield time.time(), json.loads(raw)


def scores_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The score messages a live-page message carries: a history's, a live score, or none."""
    if message["type"] == "history":
        return list(message.get("scores", []))
    return [message["score"]] if message["type"] == "score" else []


def scores_in(messages: Iterable[Arrival]) -> list[Arrival]:
    """Every score the messages carry, each with its message's arrival time."""
    return [(t, score) for t, message in messages for score in scores_of(message)]


def read_for(ws: Any, seconds: float) -> list[Arrival]:
    """Every message that arrives in the next ``seconds``."""
    return list(arrivals(ws, seconds))


def read_until(ws: Any, done: Callable[[dict[str, Any]], bool],
               timeout: float = 30.0) -> list[Arrival]:
    """Messages until one carries a score for which ``done(score)`` holds (that message is
    the last; ``done`` is not asked about the scores after that one); AssertionError, with
    the last scores seen, when none does within ``timeout`` seconds."""
    seen: list[Arrival] = []
    for arrival in arrivals(ws, timeout):
        seen.append(arrival)
        if any(done(score) for score in scores_of(arrival[1])):
            return seen
    last = [(s["stream"], s["state"], s["t_end"]) for _, s in scores_in(seen)[-6:]]
    raise AssertionError(f"condition not met in {timeout} s; last scores: {last}")


def scores_until(ws: Any, done: Callable[[dict[str, Any]], bool],
                 timeout: float = 30.0) -> list[dict[str, Any]]:
    """The scores (history included) up to and including the first for which ``done(score)``
    holds; AssertionError when none does within ``timeout`` seconds."""
    seen: list[dict[str, Any]] = []

    def seen_and_done(score: dict[str, Any]) -> bool:
        seen.append(score)
        return done(score)

    read_until(ws, seen_and_done, timeout)
    return seen


class LiveReader:
    """A dashboard WebSocket read in a thread of its own, as a browser would, from `start()`
    (or entering the ``with``) until `close()`: each message goes with its arrival time to
    `handle`, which keeps it in `messages` (a subclass keeps what it needs instead). An error
    (refused, closed) ends the reading and is kept in `error`, not lost in the thread.
    Readers that share ``stop`` all stop when one of them is closed."""

    def __init__(self, url: str, token: str, stop: threading.Event | None = None) -> None:
        self.url = url
        self.token = token
        self.messages: list[Arrival] = []
        self.error: BaseException | None = None
        self.connected = threading.Event()
        """Set once the socket is open, or the connection failed (then `error` says why)."""
        self._stop = stop or threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LiveReader:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5 + POLL_S)

    def __enter__(self) -> LiveReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        try:
            with open_dashboard_ws(self.url, self.token) as ws:
                self.connected.set()
                for received, message in arrivals(ws, stop=self._stop):
                    self.handle(received, message)
        except BaseException as exc:  # shown by the benchmark or test, not lost in a thread
            self.error = exc
        finally:
            self.connected.set()

    def handle(self, received: float, message: dict[str, Any]) -> None:
        """Keep one message (called in the reading thread, in arrival order)."""
        self.messages.append((received, message))

    def check(self) -> None:
        """RuntimeError when the reading failed: what was read since then is missing."""
        if self.error is not None:
            raise RuntimeError(f"the WebSocket client failed: {self.error!r}")
