"""Benchmarks that run the real processes for minutes: `bench soak` and `bench capacity`.

They start `wellmon infer`, `wellmon dashboard` and capture pairs as separate OS
processes on free loopback ports, exactly as `wellmon run` would on one machine
but with several streams, and watch them from outside: a WebSocket client for
what a browser sees, psutil for memory and CPU. Figures are printed, never
asserted: the machines are shared and noisy.

This module holds what both share: `fleet` (the processes, through the harness of
wellmon/harness.py, always stopped, also on Ctrl-C or SIGTERM), `ScoreClient` (a browser
stand-in that records every score message) and small formatting helpers.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wellmon import config as config_mod
from wellmon.config import Config
from wellmon.harness import Processes, loopback_env
from wellmon.live_reader import LiveReader

STOP_GRACE_S = 10.0


def require_psutil() -> Any:
    """psutil measures memory and CPU; it comes with the test extra, not with wellmon."""
    try:
        import psutil
    except ImportError:
        raise SystemExit("wellmon bench: this benchmark needs psutil "
                         "(pip install psutil, or pip install -e '.[test]')") from None
    return psutil


def fleet(config: Config, state_dir: Path, token: str,
          extra_env: dict[str, str] | None = None) -> Processes:
    """The harness for a benchmark's processes on free loopback ports, with our settings
    (``--config``, as `wellmon run` passes them). Each child dies with us even if we are
    killed (`WELLMON_PARENT_PID`); stopping sends SIGTERM, then SIGKILL after STOP_GRACE_S.
    Start them with ``start_pipeline({stream: "sample", …}, epoch=True)``."""
    config_path = state_dir / "effective.yaml"
    config_mod.dump(config, config_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(config_mod.ENV_PREFIX)}
    env = {**env, **loopback_env(token, state_dir), "PYTHONUNBUFFERED": "1",
           "WELLMON_PARENT_PID": str(os.getpid()), **(extra_env or {})}
    return Processes(env, common_args=("--config", str(config_path)),
                     stop_grace_s=STOP_GRACE_S, start_timeout_s=120.0)


def process_tree(processes: Processes) -> dict[str, Any]:
    """psutil processes by name, with each one's own children (the node's speech-to-text
    worker, multiprocessing's resource tracker) as `name/worker`, `name/tracker`."""
    psutil = require_psutil()
    found: dict[str, Any] = {}
    for name, child in processes.procs.items():
        try:
            process = psutil.Process(child.pid)
            found[name] = process
            for sub in process.children(recursive=True):
                cmdline = " ".join(sub.cmdline())
                kind = "tracker" if "resource_tracker" in cmdline else "worker"
                label = f"{name}/{kind}"
                found[label if label not in found else f"{label}-{sub.pid}"] = sub
        except psutil.Error:
            continue
    return found


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a benchmark as Ctrl-C does: the processes are stopped, what was
    measured so far is printed."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass(frozen=True)
class Record:
    """What the client keeps of one score message."""

    received: float
    stream: str
    seq: int
    state: str
    t_end: float
    t_last_frame: float | None
    video_gaps: int
    audio_gaps: int
    video_late: int

    @property
    def latency_ms(self) -> float | None:
        """Capture of the window's last frame → the score in the browser (as `bench latency`)."""
        if self.state != "live" or self.t_last_frame is None:
            return None
        return (self.received - self.t_last_frame) * 1e3


class ScoreClient(LiveReader):
    """A browser stand-in: reads the dashboard's WebSocket in a thread, keeps every score
    (history excluded) and the latest node statistics."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token)
        self.records: list[Record] = []
        self.node_stats: dict[str, Any] = {}

    def handle(self, received: float, message: dict[str, Any]) -> None:
        if message["type"] == "node":
            self.node_stats = message["node"]
        elif message["type"] == "score":
            self.records.append(_record(message["score"], received))

    def between(self, start: float, end: float = float("inf")) -> list[Record]:
        return [r for r in list(self.records) if start <= r.received < end]


def _record(score: dict[str, Any], received: float) -> Record:
    quality = score.get("quality") or {}
    return Record(received, score["stream"], score["seq"], score["state"], score["t_end"],
                  score.get("t_last_frame"), (quality.get("video") or {}).get("gaps") or 0,
                  (quality.get("audio") or {}).get("gaps") or 0,
                  (quality.get("video") or {}).get("late") or 0)


@dataclass
class StreamDrops:
    """What went missing for one stream between two moments, by where it was lost."""

    media_gaps_video: int = 0  # frames lost between capture and node (sequence numbers)
    media_gaps_audio: int = 0
    late_video: int = 0  # frames the node skipped because they waited too long in its queue
    score_gaps: int = 0  # windows the node numbered that the client never got
    skipped_windows: int = 0  # grid points of `t_end` with no window at all
    not_live: int = 0  # windows published as stale or lost
    windows: int = 0

    @property
    def total(self) -> int:
        return (self.media_gaps_video + self.media_gaps_audio + self.late_video
                + self.score_gaps + self.skipped_windows + self.not_live)


def drops_by_stream(records: list[Record], before: list[Record],
                    hop_s: float) -> dict[str, StreamDrops]:
    """Per stream, losses in `records` (one measured period); `before` gives the cumulative
    gap counters' values at its start."""
    result: dict[str, StreamDrops] = {}
    for stream in sorted({r.stream for r in records}):
        ours = [r for r in records if r.stream == stream]
        earlier = [r for r in before if r.stream == stream]
        video0 = earlier[-1].video_gaps if earlier else ours[0].video_gaps
        audio0 = earlier[-1].audio_gaps if earlier else ours[0].audio_gaps
        late0 = earlier[-1].video_late if earlier else ours[0].video_late
        seqs = [r.seq for r in ours]
        ends = [r.t_end for r in ours]
        result[stream] = StreamDrops(
            media_gaps_video=max(0, ours[-1].video_gaps - video0),
            media_gaps_audio=max(0, ours[-1].audio_gaps - audio0),
            late_video=max(0, ours[-1].video_late - late0),
            score_gaps=sum(max(0, b - a - 1) for a, b in zip(seqs, seqs[1:])),
            skipped_windows=sum(max(0, round((b - a) / hop_s) - 1)
                                for a, b in zip(ends, ends[1:])),
            not_live=sum(r.state != "live" for r in ours), windows=len(ours))
    return result


def counter_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Cumulative counts by reason: what was added between two readings."""
    delta = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in delta.items() if v}


def asr_counts(node0: dict[str, Any], node1: dict[str, Any]) -> tuple[int, int]:
    """From two readings of the node's stats: audio chunks the speech-to-text worker had no
    room for in between, and how much its queue grew."""
    asr0, asr1 = node0.get("asr") or {}, node1.get("asr") or {}
    return (asr1.get("dropped_chunks", 0) - asr0.get("dropped_chunks", 0),
            asr1.get("queued_chunks", 0) - asr0.get("queued_chunks", 0))


def percentiles(values: list[float]) -> str:
    if not values:
        return "no live windows"
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  max {max(values):.1f}"


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) if counts else "none"


def cpu_seconds(process: Any) -> float | None:
    """User + system CPU time of one process (not of its children: they are listed apart)."""
    try:
        times = process.cpu_times()
    except Exception:  # psutil.Error: the process is gone
        return None
    return times.user + times.system


class StolenCpu:
    """The share of the machine's CPU time the hypervisor gave to other guests ("steal" in
    /proc/stat) between `__init__` and `pct()`. On a shared virtual machine it changes from
    minute to minute and slows every process alike: figures are read with it."""

    def __init__(self) -> None:
        self.start = _cpu_ticks()

    def pct(self) -> float | None:
        end = _cpu_ticks()
        if self.start is None or end is None or end[1] <= self.start[1]:
            return None
        return 100.0 * (end[0] - self.start[0]) / (end[1] - self.start[1])


def _cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) ticks of all CPUs since boot; None where /proc/stat has no steal."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


def stolen_text(stolen: StolenCpu) -> str:
    pct = stolen.pct()
    return "" if pct is None else f", {pct:.0f} % of the CPU time stolen by the hypervisor"


def rss_mb(process: Any) -> float | None:
    try:
        return process.memory_info().rss / 1e6
    except Exception:  # psutil.Error: the process is gone
        return None
