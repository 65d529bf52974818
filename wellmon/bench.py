"""`wellmon bench ...`: figures printed, never asserted (the machines are shared and noisy)."""

from __future__ import annotations

import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from websockets.sync.client import connect

from wellmon.config import Config
from wellmon.harness import LocalPipeline

WARMUP_S = 5.0


def bench_latency(config: Config, seconds: float, source: str) -> int:
    """p50/p95/p99 of (score reaches a WebSocket client − capture time of its last frame)."""
    token = secrets.token_urlsafe(16)
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as state, \
            LocalPipeline(source, token, Path(state)) as pipeline:
        print(f"bench latency: {source} for {seconds:g} s after {WARMUP_S:g} s warm-up "
              f"({config.capture.video_max_width}x{config.capture.video_max_height} max, "
              f"{config.capture.video_fps:g} fps, 16 kHz audio)", flush=True)
        with connect(pipeline.ws_url, max_size=None) as ws:
            start = time.monotonic()
            while time.monotonic() - start < WARMUP_S + seconds:
                message = json.loads(ws.recv(timeout=10))
                received = time.time()
                if message["type"] != "score" or time.monotonic() - start < WARMUP_S:
                    continue
                score = message["score"]
                if score["state"] != "live" or score["t_last_frame"] is None:
                    continue
                latencies.append((received - score["t_last_frame"]) * 1e3)
                for stage, ms in score["latency_ms"].items():
                    stages.setdefault(stage, []).append(ms)
    if not latencies:
        print("bench latency: no live score messages received")
        return 1
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    print(f"windows: {len(latencies)}")
    print(f"capture→browser latency ms: p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  "
          f"max {max(latencies):.1f}")
    print("stage medians ms: " + "  ".join(f"{k} {statistics.median(v):.2f}"
                                           for k, v in stages.items()))
    return 0
