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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from wellmon.config import Config, ConfigError
from wellmon.models.node.sharding import HEARTBEAT_S, Shard
from wellmon.models.node.windowing import Windower
from wellmon.streamer.lifecycle import announce_ready, log
from wellmon.streamer.wire import exposure, routes
from wellmon.streamer.wire.protocol import (
    Limits,
    Media,
    Rejected,
    RejectionCounter,
    VideoFrame,
    decode_media,
    encode_score,
)
from wellmon.streamer.wire.score import ScoreMessage
from wellmon.streamer.wire.security import Curve

ROLE = "node"
HEARTBEAT_TOPIC = b"h."
STATS_EVERY_S = 5.0
MAX_DRAIN = 256
MAX_FRAMES = 16
"""Video frames taken per turn of the loop: the face models' batch. Larger batches cost more
per frame on a CPU (bench perception) and hold the due windows back for longer."""


@dataclass(frozen=True)
class NodeFigures:
    """The node's counts since it started, and what it serves now."""

    received: dict[str, int]
    """Media messages accepted, by kind (video, audio; other_shard: ignored)."""
    rejected: dict[str, int]
    """Media messages dropped as malformed, by reason."""
    published: int
    late_frames: int
    windows: dict[str, int]
    """Score windows cut per stream served now."""
    asr: dict[str, Any] | None
    """The speech-to-text worker's figures (AsrWorker.figures), None when it is off."""


class InferenceNode:
    """Owns the sockets and the windower; `step()` is one turn of the loop."""

    def __init__(self, config: Config, context: zmq.Context | None = None) -> None:
        self.config = config
        self.context = context or zmq.Context.instance()
        self.limits = Limits(config.wire.max_payload_bytes, config.wire.max_clock_skew_s)
        self.windower = Windower.from_config(config, live=True)
        self.perception = self.windower.perception
        self.fusion = self.windower.fusion
        self.rejected = RejectionCounter()
        self.received: Counter = Counter()
        self.published = 0
        try:
            self.shard = Shard(config.node.shard, config.node.streams, time.monotonic())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.curve = Curve(config)
        self.inbox = self.context.socket(zmq.SUB)
        self.inbox.setsockopt(zmq.RCVHWM, config.wire.recv_hwm)
        self.inbox.setsockopt(zmq.LINGER, 0)
        for prefix in self.shard.subscriptions():
            self.inbox.setsockopt(zmq.SUBSCRIBE, prefix)
        routes.attach(self.inbox, routes.node_media(config), self.curve)
        self.outbox = self.context.socket(zmq.PUB)
        self.outbox.setsockopt(zmq.SNDHWM, config.wire.send_hwm * 16)
        self.outbox.setsockopt(zmq.LINGER, 0)
        routes.attach(self.outbox, routes.node_scores(config), self.curve)
        self.heartbeat = (Heartbeat(self.context, config, self.shard, self.curve)
                          if self.shard.sharded else None)
        self._last_stats = time.monotonic()
        self._logged_rejections = 0
        self.metrics: Any = None  # wellmon.metrics.NodeMetrics when metrics.enabled

    def step(self, timeout_ms: int) -> list[ScoreMessage]:
        """Receive what is waiting (up to a bound), then publish every window that is due."""
        self._drop_streams_served_elsewhere()
        drained = frames = 0
        items: list[Media] = []
        if self.inbox.poll(timeout_ms):
            while drained < MAX_DRAIN and frames < MAX_FRAMES:
                try:
                    parts = self.inbox.recv_multipart(copy=False, flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                drained += 1
                item = self.accept(parts)
                if item is not None:
                    items.append(item)
                    frames += isinstance(item, VideoFrame)
        heard_ns = time.time_ns()
        measured = self.windower.insert(items, heard_ns) if items else 0
        published = self.windower.process(time.time_ns(), heard_ns)
        for score in published:
            self.publish(score)
        if self.metrics is not None:
            self.metrics.step(drained, measured, published)
        if time.monotonic() - self._last_stats > STATS_EVERY_S:
            self.publish_stats()
        return published

    def accept(self, parts: list[Any]) -> Media | None:
        """The decoded message, or None when it was malformed (then it is counted)."""
        item = decode_media(parts, self.limits)
        if isinstance(item, Rejected):
            self.rejected.add(item)
            return None
        if not self.shard.mine(item.stream, time.monotonic()):
            self.received["other_shard"] += 1
            return None
        self.received["video" if isinstance(item, VideoFrame) else "audio"] += 1
        return item

    def _drop_streams_served_elsewhere(self) -> None:
        """Sharded nodes: drop the streams that another live node serves now."""
        if not self.shard.sharded:
            return
        now = time.monotonic()
        for stream in [s for s in self.windower.streams if not self.shard.mine(s, now)]:
            self.windower.forget(stream)

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

    def figures(self) -> NodeFigures:
        """The node's counts, each read once from the part that keeps it: what its stats
        message and its metrics both report."""
        worker = self.perception.asr_worker
        windower = self.windower.figures()
        return NodeFigures(received=dict(self.received), rejected=dict(self.rejected.counts),
                           published=self.published, late_frames=windower.late_frames,
                           windows=windower.windows,
                           asr=worker.figures() if worker else None)

    def stats(self) -> dict[str, Any]:
        """The stats message (topic n.node): who this node is, and its figures."""
        figures = self.figures()
        return {"node": ROLE, "name": self.config.node.name,
                "shard": f"{self.shard.index}/{self.shard.count}" if self.shard.sharded
                else None, "live_nodes": sorted(self.shard.live(time.monotonic())),
                "provider": self.perception.provider,
                "fusion": self.fusion.describe(),
                "asr": figures.asr,
                "received": figures.received, "late_frames": figures.late_frames,
                "published": figures.published,
                "rejected": figures.rejected, "streams": sorted(figures.windows)}

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
        if self.heartbeat is not None:
            self.heartbeat.close()
        self.inbox.close()
        self.outbox.close()
        self.curve.close()
        self.perception.close()

    def until_next_hop_ms(self) -> int:
        hop_ns = self.windower.hop_ns
        return max(1, int((hop_ns - time.time_ns() % hop_ns) / 1e6) + 1)


class Heartbeat:
    """A sharded node's liveness, in its own thread with its own sockets: a node busy with
    a long batch is slow, not dead, and must not lose its streams for it. Sends this node's
    index every `HEARTBEAT_S` and records the peers' (models/node/sharding.py decides with them).
    """

    def __init__(self, context: zmq.Context, config: Config, shard: Shard,
                 curve: Curve) -> None:
        self.shard = shard
        self.name = config.node.name
        self.bad = 0
        self.stop = threading.Event()
        self.sender = context.socket(zmq.PUB)
        self.sender.setsockopt(zmq.LINGER, 0)
        routes.attach(self.sender, routes.node_scores(config), curve)
        self.listener: zmq.Socket | None = None
        peers = routes.node_peers(config)
        if peers:
            self.listener = context.socket(zmq.SUB)
            self.listener.setsockopt(zmq.LINGER, 0)
            self.listener.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
            routes.attach(self.listener, routes.Endpoint(peers, bind=False), curve)
        self.thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        beat = [HEARTBEAT_TOPIC + self.name.encode(),
                json.dumps({"node": self.name, "shard": self.shard.index}).encode()]
        next_beat = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S
                self.sender.send_multipart(beat)
            if self.listener is None:
                self.stop.wait(HEARTBEAT_S)
            elif self.listener.poll(int(HEARTBEAT_S * 1000 / 4)):
                self._heard(self.listener.recv_multipart())

    def _heard(self, parts: list[bytes]) -> None:
        try:
            index = int(json.loads(parts[-1])["shard"])
        except (ValueError, KeyError, TypeError, IndexError):
            self.bad += 1
            return
        self.shard.heard(index, time.monotonic())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sender.close()
        if self.listener is not None:
            self.listener.close()


def serve(config: Config, stop: threading.Event,
          observe: Callable[[InferenceNode], str] | None = None) -> int:
    """Run the node until ``stop``; ``observe`` (the metrics endpoint, when the command line
    turns it on) gets the node before it is ready and returns what its READY line adds."""
    media, scores = routes.node_media(config), routes.node_scores(config)
    # Refuse an exposed address before the models load, not seconds later at the bind.
    peers = routes.node_peers(config)
    exposure.check(config, [media.address, scores.address, *([peers] if peers else [])])
    node = InferenceNode(config)
    try:
        served = observe(node) if observe is not None else ""
        announce_ready(f"{ROLE} {config.node.name} in {media.address} out {scores.address} "
                       f"models on {node.perception.provider}, {node.fusion.describe()}"
                       f"{served}")
        while not stop.is_set():
            node.step(timeout_ms=min(100, node.until_next_hop_ms()))
    finally:
        node.close()
    return 0
