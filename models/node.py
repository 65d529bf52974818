"""The inference node: capture messages in over ZeroMQ, score messages out.

It binds a SUB socket for the capture processes and a PUB socket for the
dashboards; both ends reconnect on their own, so captures, the node and the
dashboard can each restart at any time. Bad messages are counted by reason
and dropped; the counts go out every few seconds on topic `n.node` and to the
log.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import zmq

from models.fusion.serving import load_fusion
from models.perception import Perception
from models.score import ScoreMessage
from models.windows import Windower
from streamer.lifecycle import announce_ready, log
from streamer.protocol import (
    Limits,
    Media,
    Rejected,
    RejectionCounter,
    VideoFrame,
    decode_media,
    encode_score,
)
from wellmon.config import Config

ROLE = "node"
STATS_EVERY_S = 5.0
MAX_DRAIN = 256


class InferenceNode:
    """Owns the sockets and the windower; `step()` is one turn of the loop."""

    def __init__(self, config: Config, context: zmq.Context | None = None) -> None:
        self.config = config
        self.context = context or zmq.Context.instance()
        self.limits = Limits(config.wire.max_payload_bytes, config.wire.max_clock_skew_s)
        self.perception = Perception(config.perception, config.asr, asr_process=True)
        self.fusion = load_fusion(config.perception)
        self.windower = Windower(config.node, self.perception, self.fusion)
        self.rejected = RejectionCounter()
        self.received: Counter = Counter()
        self.published = 0
        self.inbox = self.context.socket(zmq.SUB)
        self.inbox.setsockopt(zmq.RCVHWM, config.wire.recv_hwm)
        self.inbox.setsockopt(zmq.LINGER, 0)
        for prefix in (b"v.", b"a."):
            self.inbox.setsockopt(zmq.SUBSCRIBE, prefix)
        self.inbox.bind(config.node.input)
        self.outbox = self.context.socket(zmq.PUB)
        self.outbox.setsockopt(zmq.SNDHWM, config.wire.send_hwm * 16)
        self.outbox.setsockopt(zmq.LINGER, 0)
        self.outbox.bind(config.node.output)
        self._last_stats = time.monotonic()
        self._logged_rejections = 0

    def step(self, timeout_ms: int) -> list[ScoreMessage]:
        """Receive what is waiting (up to a bound), then publish every window that is due."""
        if self.inbox.poll(timeout_ms):
            items = []
            for _ in range(MAX_DRAIN):
                try:
                    parts = self.inbox.recv_multipart(copy=False, flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                item = self.accept(parts)
                if item is not None:
                    items.append(item)
            self.windower.insert(items, time.time_ns())
        published = self.windower.process(time.time_ns())
        for score in published:
            self.publish(score)
        if time.monotonic() - self._last_stats > STATS_EVERY_S:
            self.publish_stats()
        return published

    def accept(self, parts: list[Any]) -> Media | None:
        """The decoded message, or None when it was malformed (then it is counted)."""
        item = decode_media(parts, self.limits)
        if isinstance(item, Rejected):
            self.rejected.add(item)
            return None
        self.received["video" if isinstance(item, VideoFrame) else "audio"] += 1
        return item

    def publish(self, score: ScoreMessage) -> None:
        score.t_published = time.time_ns() / 1e9
        if score.t_last_frame is not None:
            score.latency_ms["capture_to_publish"] = (score.t_published
                                                      - score.t_last_frame) * 1e3
        try:
            self.outbox.send_multipart(encode_score(score.to_dict()), flags=zmq.NOBLOCK)
            self.published += 1
        except zmq.Again:
            pass

    def stats(self) -> dict[str, Any]:
        worker = self.perception.asr_worker
        return {"node": ROLE, "provider": self.perception.provider,
                "fusion": self.fusion.describe(),
                "asr": {"dropped_chunks": worker.dropped, "error": worker.error} if worker
                else None,
                "received": dict(self.received), "published": self.published,
                "rejected": dict(self.rejected.counts), "streams": sorted(self.windower.streams)}

    def publish_stats(self) -> None:
        self._last_stats = time.monotonic()
        stats = self.stats()
        try:
            self.outbox.send_multipart([b"n.node", json.dumps(stats).encode()],
                                       flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
        if self.rejected.total != self._logged_rejections:
            self._logged_rejections = self.rejected.total
            log(ROLE, f"dropped malformed messages: {stats['rejected']}")

    def close(self) -> None:
        self.inbox.close()
        self.outbox.close()
        self.perception.close()

    def until_next_hop_ms(self) -> int:
        hop_ns = self.windower.hop_ns
        return max(1, int((hop_ns - time.time_ns() % hop_ns) / 1e6) + 1)


def serve(config: Config, stop: threading.Event) -> int:
    node = InferenceNode(config)
    announce_ready(f"{ROLE} in {config.node.input} out {config.node.output} "
                   f"models on {node.perception.provider}, {node.fusion.describe()}")
    try:
        while not stop.is_set():
            node.step(timeout_ms=min(100, node.until_next_hop_ms()))
    finally:
        node.close()
    return 0
