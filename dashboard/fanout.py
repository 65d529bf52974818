"""The browser fan-out: every connected page's queue, and the recent history a new page gets.

Each browser has a bounded queue (:class:`Client`): when it cannot keep up, its oldest
updates are dropped, so a slow client never slows the node or the other clients. The
:class:`Hub` keeps each stream's recent scores and the node's latest statistics, hands every
update to every live page's queue, and gives a new page the history first.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

HISTORY_CHUNK_S = 60.0
"""Capture seconds of history in one message to a new client: the first message stays small
(about 300 KB a stream) and the rest follows in messages of the same size."""
WRITE_LIMIT = 32 * 1024
"""Bytes waiting in a client's transport above which sending to it waits (websockets'
flow control): at most this much of our own updates is in flight to a slow client."""
FLOOD_BYTES = 8 * 2**20
"""A client whose transport holds this much more than the longest message we sent it has
not read the Pongs to its own Pings: websockets writes those outside every queue."""


@dataclass(eq=False)
class Client:
    """One browser: a drop-oldest queue and a wake-up event for its sender task."""

    connection: ServerConnection
    capacity: int
    sees_private: bool = False  # an admin's live page: it also gets a kiosk check's scores
    queue: deque[str] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0
    longest: int = 0  # bytes of the longest message handed to the connection
    buffered: int = 0  # bytes in its transport at the last look
    read_at: float = field(default_factory=time.monotonic)  # when it last took some

    def offer(self, text: str) -> bool:
        """Queue `text`; True when the oldest update was dropped for it."""
        full = len(self.queue) >= self.capacity
        if full:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(text)
        self.ready.set()
        return full

    def fault(self, now: float, stalled_after_s: float) -> str | None:
        """Why this client must be disconnected, or None. Our own writes wait while more
        than WRITE_LIMIT is buffered, so a buffer above it that has not gone down means the
        client reads nothing; a buffer far beyond anything we sent means Pongs pile up."""
        size = self.connection.transport.get_write_buffer_size()
        if size <= WRITE_LIMIT or size < self.buffered:
            self.read_at = now
        self.buffered = size
        if size > FLOOD_BYTES + self.longest:
            return "ping_flood"
        return "not_reading" if now - self.read_at > stalled_after_s else None

    async def send_queued(self) -> None:
        """The client's sender task: what is queued, oldest first, until the socket closes."""
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                while self.queue:
                    text = self.queue.popleft()
                    self.longest = max(self.longest, len(text))  # ASCII: chars = bytes
                    await self.connection.send(text)
        except ConnectionClosed:
            pass


@dataclass(frozen=True)
class Kept:
    """One score in the history: the message as received and its JSON text, made once.
    ``private``: a person's kiosk check, for admins' pages only."""

    score: dict[str, Any]
    text: str
    private: bool = False


class Hub:
    """Recent history per stream, the node's latest statistics and the connected live pages.

    Each score is serialised once, when it arrives; a new client's history is joined from
    those texts in chunks of at most HISTORY_CHUNK_S, oldest first, and the chunks are
    shared by every client that connects before the next score (a burst of connections
    costs one join, not one serialisation of the whole history each).
    """

    def __init__(self, history_s: float, hop_s: float, client_queue: int) -> None:
        self.history_len = max(1, int(history_s / hop_s))
        self.client_queue = client_queue
        self.history: dict[str, deque[Kept]] = {}
        self._hello: dict[bool, list[str]] = {}  # sees_private -> the current chunks
        self.clients: set[Client] = set()
        self.node_stats: dict[str, Any] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.dropped_updates = 0  # over all live pages ever
        self.stream_seen: dict[str, float] = {}  # wall clock of each stream's last score
        self.node_seen: dict[str, float] = {}  # and of each node's last statistics

    def add_score(self, score: dict[str, Any], private: bool = False) -> None:
        """Keep and fan out one score; a ``private`` one reaches only clients that see
        private scores (admins), now and in later clients' history."""
        self.stream_seen[score["stream"]] = time.time()
        kept = Kept(score, json.dumps(score, allow_nan=False), private)
        self.history.setdefault(score["stream"], deque(maxlen=self.history_len)).append(kept)
        self._hello = {}
        self._send_all(f'{{"type": "score", "score": {kept.text}}}', private)

    def history_of(self, stream: str, sees_private: bool) -> list[dict[str, Any]]:
        """The kept score messages of one stream, oldest first (none of a private one for a
        page that may not see it)."""
        return [k.score for k in self.history.get(stream, ()) if sees_private or not k.private]

    def set_node_stats(self, stats: dict[str, Any]) -> None:
        self.node_stats = stats
        self.nodes[str(stats.get("name", "node"))] = stats
        self.node_seen[str(stats.get("name", "node"))] = time.time()
        self._hello = {}
        self._send_all(json.dumps({"type": "node", "node": stats}, allow_nan=False))

    def checks_changed(self) -> None:
        """A kiosk check started, ended or was deleted, on this dashboard or another on the
        same store: admins' pages (the operator page) reload the list; nothing about the
        check itself travels here."""
        self._send_all('{"type": "checks.changed"}', private=True)

    def _send_all(self, text: str, private: bool = False) -> None:
        for client in self.clients:
            if client.sees_private or not private:
                self.dropped_updates += client.offer(text)

    def hello(self, sees_private: bool = False) -> list[str]:
        """A new client's first messages: the history in chunks of at most HISTORY_CHUNK_S
        of capture time, oldest first; the last chunk carries the node's counters and
        ``"last": true``. One (empty) chunk when there is no history."""
        if sees_private not in self._hello:
            kept = sorted((k for h in self.history.values() for k in h
                           if sees_private or not k.private),
                          key=lambda k: k.score["t_end"])
            chunks: list[list[str]] = [[]]
            start = kept[0].score["t_end"] if kept else 0.0
            for k in kept:
                if k.score["t_end"] - start >= HISTORY_CHUNK_S:
                    chunks.append([])
                    start = k.score["t_end"]
                chunks[-1].append(k.text)
            node = json.dumps(self.node_stats, allow_nan=False)
            self._hello[sees_private] = [
                f'{{"type": "history", "scores": [{", ".join(texts)}], "last": '
                f'{"true" if i == len(chunks) - 1 else "false"}'
                + (f', "node": {node}}}' if i == len(chunks) - 1 else "}")
                for i, texts in enumerate(chunks)]
        return self._hello[sees_private]

    def streams_and_nodes(self) -> dict[str, Any]:
        """The first part of ``/api/status``. `age_s`: seconds since the dashboard last heard
        of a stream or node; a stream whose node died keeps its last state, and only its age
        tells."""
        now = time.time()
        return {
            "streams": {name: {"state": h[-1].score["state"], "t_end": h[-1].score["t_end"],
                               "age_s": round(now - self.stream_seen[name], 3)}
                        for name, h in self.history.items() if h},
            "node": self.node_stats,
            "nodes": {name: {**stats, "age_s": round(now - self.node_seen[name], 3)}
                      for name, stats in self.nodes.items()},
        }
