"""Which streams a node serves when several share the work.

Two ways, both set in `node`:

* `streams: "cam-a,cam-b"`: the node subscribes to exactly those topics, so ZeroMQ (through
  the proxy's XPUB/XSUB) sends it nothing else.
* `shard: "k/N"`: rendezvous (highest-random-weight) hashing. Every node scores each
  stream id against every *live* node index and the highest score wins, so all nodes agree
  without talking, and when a node dies only its streams move (to the next-highest live
  node), which is the consistent-hashing property. Liveness comes from heartbeats on the
  scores bus; a node not heard for `peer_timeout_s` is dead. Until then, at start, every
  node counts as alive, so that two nodes never both serve a stream while they are
  still discovering each other. These nodes subscribe to every stream and keep their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PEER_TIMEOUT_S = 3.0
"""A peer whose heartbeat (every second) is this old is taken for dead."""
HEARTBEAT_S = 1.0


def parse_shard(text: str) -> tuple[int, int]:
    """`k/N` -> (k, N) with 0 <= k < N; ValueError naming the problem otherwise."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"node.shard must look like k/N, e.g. 0/2, got {text!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"node.shard {text!r}: k must be in 0..N-1")
    return k, n


def rendezvous(stream: str, nodes: Iterable[int]) -> int:
    """The node index with the highest hash weight for `stream`."""
    def weight(node: int) -> bytes:
        return hashlib.blake2b(f"{node}\0{stream}".encode(), digest_size=8).digest()
    return max(nodes, key=weight)


class Shard:
    """This node's share of the streams, and the subscriptions that fetch it."""

    def __init__(self, shard: str | None, streams: str | None, now: float,
                 peer_timeout_s: float = PEER_TIMEOUT_S) -> None:
        if shard and streams:
            raise ValueError("set node.shard or node.streams, not both")
        self.index, self.count = parse_shard(shard) if shard else (0, 1)
        self.named = frozenset(s.strip() for s in streams.split(",") if s.strip()) \
            if streams else None
        self.peer_timeout_s = peer_timeout_s
        self.started = now
        self.last_heard: dict[int, float] = {}

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def subscriptions(self) -> list[bytes]:
        """Topic prefixes for the SUB socket (a prefix may match longer ids: `mine()`
        decides)."""
        if self.named is None:
            return [b"v.", b"a."]
        return [f"{kind}.{stream}".encode() for stream in sorted(self.named)
                for kind in ("v", "a")]

    def heard(self, index: int, now: float) -> None:
        if 0 <= index < self.count and index != self.index:
            self.last_heard[index] = now

    def live(self, now: float) -> set[int]:
        """Indexes of the nodes taken to be alive: this one, and peers heard lately (all of
        them during the first `peer_timeout_s`)."""
        if now - self.started < self.peer_timeout_s:
            return set(range(self.count))
        return {self.index} | {k for k, t in self.last_heard.items()
                               if now - t < self.peer_timeout_s}

    def mine(self, stream: str, now: float) -> bool:
        if self.named is not None:
            return stream in self.named
        return not self.sharded or rendezvous(stream, self.live(now)) == self.index
