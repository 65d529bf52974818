"""The dashboard's intake: the node's score messages and statistics off ZeroMQ.

Every message is validated (``decode_score``); a malformed one is counted by reason and
dropped. A score gets the dashboard's own latency stamp (``latency_ms.publish_to_dashboard``)
and nothing else, and is handed on; so are the node's statistics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from wellmon.config import Config
from wellmon.streamer.wire import routes
from wellmon.streamer.wire.protocol import (
    Rejected,
    RejectionCounter,
    decode_score,
    loads_finite,
)
from wellmon.streamer.wire.security import Curve


class ScoreFeed:
    """The SUB socket on the node's output; ``take_score`` and ``take_node_stats`` get what
    passes, ``observe_latency`` each score's publish-to-dashboard time in seconds."""

    def __init__(self, config: Config, take_score: Callable[[dict[str, Any]], None],
                 take_node_stats: Callable[[dict[str, Any]], None],
                 observe_latency: Callable[[float], None]) -> None:
        self.config = config
        self.take_score = take_score
        self.take_node_stats = take_node_stats
        self.observe_latency = observe_latency
        self.scores_received = 0
        self.rejected = RejectionCounter()

    async def receive(self) -> None:
        """Read the node's messages until cancelled."""
        context = zmq.asyncio.Context()
        sock = context.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, self.config.wire.recv_hwm * 16)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        for prefix in (b"s.", b"n."):
            sock.setsockopt(zmq.SUBSCRIBE, prefix)
        routes.attach(sock, routes.Endpoint(routes.dashboard_scores(self.config), bind=False),
                      Curve(self.config))
        try:
            while True:
                parts = await sock.recv_multipart()
                self.accept(parts)
        finally:
            sock.close()
            context.term()

    def accept(self, parts: list[bytes]) -> None:
        """One multipart message: node statistics, a score, or something counted and dropped."""
        if parts and parts[0].startswith(b"n.") and len(parts) == 2:
            stats = loads_finite(parts[1])
            if isinstance(stats, Rejected):
                self.rejected.add(stats)
            elif isinstance(stats, dict):
                self.take_node_stats(stats)
            return
        score = decode_score(parts)
        if isinstance(score, Rejected):
            self.rejected.add(score)
            return
        if isinstance(score.get("latency_ms"), dict) and score.get("t_published"):
            score["latency_ms"]["publish_to_dashboard"] = (time.time()
                                                           - score["t_published"]) * 1e3
            self.observe_latency(score["latency_ms"]["publish_to_dashboard"] / 1e3)
        self.scores_received += 1
        self.take_score(score)
