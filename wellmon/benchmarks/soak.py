"""`wellmon bench soak`: the whole pipeline for half an hour, to see what only time shows.

A leak, a queue that grows, a counter that drifts or latency that creeps up do
not show in a one-minute benchmark. This runs the node, the dashboard and N
capture pairs of the sample clip at real time for M minutes after a warm-up and
prints every process's memory at the start and the end, every drop by where it
happened, and capture→browser latency per time slice, so that drift is visible.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from wellmon.benchmarks import (
    ScoreClient,
    StolenCpu,
    asr_counts,
    counter_delta,
    counts_text,
    drops_by_stream,
    fleet,
    percentiles,
    process_tree,
    require_psutil,
    rss_mb,
    sigterm_as_interrupt,
    stolen_text,
)
from wellmon.config import Config
from wellmon.harness import Processes

WARMUP_S = 60.0
SLICE_S = 300.0
"""Latency is summarised per 5 minutes; shorter runs get six slices."""
RSS_TARGET_PCT = 5.0
DRIFT_FACTOR, DRIFT_SLACK_MS = 1.2, 5.0
""""No drift": the last slice's p50 within 20 % (and 5 ms) of the first slice's."""
SAMPLE_EVERY_S = 5.0


def bench_soak(config: Config, minutes: float = 30.0, streams: int = 4,
               warmup_s: float = WARMUP_S) -> int:
    """Run node + dashboard + `streams` capture pairs for `minutes` after `warmup_s`; print
    RSS growth per process, drops by reason and latency per slice."""
    require_psutil()
    if minutes <= 0 or streams < 1 or warmup_s < 0:
        print("wellmon bench soak: --minutes must be > 0 and --streams at least 1")
        return 2
    measure_s = minutes * 60.0
    slice_s = SLICE_S if measure_s >= 6 * SLICE_S else measure_s / 6
    names = [f"soak-{i}" for i in range(1, streams + 1)]
    print(f"bench soak: {streams} stream(s) of the sample clip "
          f"({config.capture.video_max_width}x{config.capture.video_max_height} max, "
          f"{config.capture.video_fps:g} fps, 16 kHz audio, real time) for {minutes:g} min "
          f"after {warmup_s:g} s warm-up; latency slices of {_duration(slice_s)}", flush=True)
    token = secrets.token_urlsafe(16)
    failure = ""
    with tempfile.TemporaryDirectory(prefix="wellmon-soak-") as state, sigterm_as_interrupt():
        pipeline = fleet(config, Path(state), token)
        try:
            pipeline.start_pipeline(dict.fromkeys(names, "sample"), epoch=True)
            for name, process in process_tree(pipeline).items():
                print(f"  {name:<28} pid {process.pid}")
            with ScoreClient(pipeline.ws_url(), token) as client:
                return _soak(pipeline, client, token, config, measure_s, slice_s, warmup_s)
        except KeyboardInterrupt:
            failure = "interrupted"
        except RuntimeError as exc:  # a process died or the client failed: that is the finding
            failure = str(exc)
        finally:
            pipeline.stop_all()
    print(f"bench soak: {failure}; every process stopped", flush=True)
    return 130 if failure == "interrupted" else 1


def _soak(pipeline: Processes, client: ScoreClient, token: str, config: Config,
          measure_s: float, slice_s: float, warmup_s: float) -> int:
    started = time.time()
    _wait(pipeline, client, started + warmup_s)
    start = time.time()
    stolen = StolenCpu()
    status0, node0 = pipeline.get("api/status", token), dict(client.node_stats)
    rss = RssReadings(process_tree(pipeline))
    rss.read(start)
    # Growth is judged from when the dashboard's history (dashboard.history_s of scores for
    # new browsers) is full: until then its memory grows by design.
    settle_at = max(start, started + config.dashboard.history_s + SAMPLE_EVERY_S)
    print(f"[warm-up done] {len(client.records)} windows so far; measuring", flush=True)
    slices_done = 0
    baseline_done = False
    exit_code = 0
    try:
        while time.time() < start + measure_s:
            _wait(pipeline, client, min(start + measure_s, time.time() + SAMPLE_EVERY_S))
            rss.read(time.time())
            if not baseline_done and time.time() >= settle_at + slice_s:
                baseline_done = True
                print(f"[history full] RSS baseline: the readings of "
                      f"{_clock(settle_at - start)}–{_clock(settle_at - start + slice_s)}",
                      flush=True)
            while time.time() >= start + (slices_done + 1) * slice_s - 1e-6:
                _print_slice(client, start, slices_done * slice_s, (slices_done + 1) * slice_s,
                             progress=True)
                slices_done += 1
    except KeyboardInterrupt:
        exit_code = 130
        print("bench soak: interrupted; results so far:", flush=True)
    except RuntimeError as exc:  # a process died: what led up to it is the finding
        exit_code = 1
        print(f"bench soak: {exc}\nresults until then:", flush=True)
    end = time.time()
    rss.read(end)
    try:
        status1 = pipeline.get("api/status", token)
    except OSError:  # the dashboard is gone
        status1 = status0
    node1 = dict(client.node_stats)
    if client.error is not None:
        print(f"bench soak: the WebSocket client failed: {client.error!r}")
        return 1
    records = client.between(start, end)
    if not records:
        print("bench soak: no score messages received")
        return 1
    print(f"\nmeasured {(end - start) / 60:.1f} min after {warmup_s:g} s warm-up; "
          f"{len(records)} windows; load average at the end {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs{stolen_text(stolen)}")
    if settle_at + slice_s > end - slice_s:
        print(f"  (the run is too short to judge growth from {_duration(slice_s)} of readings "
              f"after the dashboard's history is full ({config.dashboard.history_s:g} s): "
              f"judged from the warm-up)")
        settle_at = start
    growth = _print_rss(rss, start, settle_at, end, slice_s)
    _print_drops(client, start, records, node0, node1, status0, status1,
                 config.node.hop_s)
    print(f"capture→browser latency ms per {_duration(slice_s)} slice:")
    bounds = _slices(end - start, slice_s)
    summaries = [_print_slice(client, start, a, b) for a, b in bounds]
    summaries = [x for x in summaries if x is not None]
    _print_target(growth, summaries, client.between(start, end), start)
    return exit_code


def _wait(pipeline: Processes, client: ScoreClient, until: float) -> None:
    """Sleep until `until`, checking that every process and the client are still there."""
    while time.time() < until:
        time.sleep(min(1.0, max(0.0, until - time.time())))
        pipeline.check_alive()
        client.check()


def _slices(measured_s: float, slice_s: float) -> list[tuple[float, float]]:
    """Slice bounds (seconds from the start); a short remainder joins the last slice."""
    bounds = [(i * slice_s, (i + 1) * slice_s) for i in range(int(measured_s // slice_s))]
    if not bounds:
        return [(0.0, measured_s)]
    if measured_s - bounds[-1][1] > 0.25 * slice_s:
        bounds.append((bounds[-1][1], measured_s))
    else:
        bounds[-1] = (bounds[-1][0], measured_s)
    return bounds


def _print_slice(client: ScoreClient, start: float, a: float, b: float,
                 progress: bool = False) -> tuple[float, float] | None:
    """One slice's percentiles (`a`, `b`: seconds from the start); returns its (p50, p99)."""
    records = client.between(start + a, start + b)
    latencies = [r.latency_ms for r in records if r.latency_ms is not None]
    prefix = "[slice] " if progress else "  "
    print(f"{prefix}{_clock(a)}–{_clock(b)}  windows {len(records):>5}  "
          f"{percentiles(latencies)}", flush=True)
    if not latencies:
        return None
    p50, p99 = np.percentile(latencies, [50, 99])
    return float(p50), float(p99)


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds % 60 == 0 else f"{seconds:.0f} s"


def _print_rss(rss: RssReadings, start: float, settled_at: float, end: float,
               window_s: float) -> dict[str, float]:
    """RSS per process after the warm-up, once the history is full and at the end (medians of
    `window_s` of readings); returns the growth between the last two in % by process."""
    print(f"RSS MB (after warm-up; history full → end, each the median of "
          f"{_duration(window_s)} of readings; growth; peak; least-squares trend from history "
          f"full):")
    growth: dict[str, float] = {}
    for name in rss.readings:
        a = rss.median(name, start, start + SAMPLE_EVERY_S)
        b = rss.median(name, settled_at, settled_at + window_s)
        c = rss.median(name, end - window_s, end)
        if a is None or b is None or c is None or not rss.alive(name, end):
            print(f"  {name:<28} {a or 0:8.1f} → gone")
            continue
        growth[name] = (c - b) / b * 100
        print(f"  {name:<28} {a:8.1f} {b:8.1f} → {c:8.1f}  {growth[name]:+6.1f} %   peak "
              f"{rss.peak(name):8.1f}   {rss.trend(name, settled_at, end):+.2f} MB/min")
    return growth


class RssReadings:
    """Every process's RSS every few seconds. Growth compares medians of a latency slice's
    length of readings (5 minutes in a 30-minute run), not single readings: the node's memory
    rises with a burst of big batches, and at rest it saws by about 10 MiB as its sessions
    hand memory back every 10 s and the next runs take it again (models/perception/runtime.py). A
    shorter median lands on either level: in one run, medians of 35 s at rest spread over
    6 % within four minutes and ended where they began (docs/benchmarks.md, "Soak")."""

    def __init__(self, processes: dict[str, Any]) -> None:
        self.processes = processes
        self.readings: dict[str, list[tuple[float, float]]] = {name: [] for name in processes}

    def read(self, now: float) -> None:
        for name, process in self.processes.items():
            mb = rss_mb(process)
            if mb is not None:
                self.readings[name].append((now, mb))

    def between(self, name: str, a: float, b: float) -> list[tuple[float, float]]:
        return [(t, mb) for t, mb in self.readings[name] if a <= t <= b]

    def median(self, name: str, a: float, b: float) -> float | None:
        values = [mb for _, mb in self.between(name, a, b)]
        return float(np.median(values)) if values else None

    def trend(self, name: str, a: float, b: float) -> float:
        """MB per minute over the readings between `a` and `b`."""
        return _per_minute(self.between(name, a, b), a)

    def peak(self, name: str) -> float:
        return max(mb for _, mb in self.readings[name])

    def alive(self, name: str, end: float) -> bool:
        """Read at the end: a process that died has no reading then."""
        return bool(self.readings[name]) and self.readings[name][-1][0] >= end


def _print_drops(client: ScoreClient, start: float, records: list, node0: dict, node1: dict,
                 status0: dict, status1: dict, hop_s: float) -> None:
    print("dropped messages while measuring:")
    print(f"  node, rejected malformed media: "
          f"{counts_text(counter_delta(node1.get('rejected', {}), node0.get('rejected', {})))}")
    print(f"  dashboard, rejected score messages: "
          f"{counts_text(counter_delta(status1['rejected_scores'], status0['rejected_scores']))}")
    print(f"  dashboard, updates dropped for slow browsers: "
          f"{status1['dropped_updates'] - status0['dropped_updates']}")
    asr_dropped, _ = asr_counts(node0, node1)
    print(f"  node, audio chunks the speech-to-text worker had no room for: {asr_dropped} "
          f"({(node1.get('asr') or {}).get('queued_chunks', 0)} waiting at the end)")
    before = [r for r in client.records if r.received < start]
    for stream, d in drops_by_stream(records, before, hop_s).items():
        print(f"  {stream}: media gaps video {d.media_gaps_video} audio {d.media_gaps_audio}, "
              f"late frames skipped {d.late_video}, "
              f"score gaps {d.score_gaps}, skipped windows {d.skipped_windows}, "
              f"windows not live {d.not_live} of {d.windows}")


def _print_target(growth: dict[str, float], slices: list[tuple[float, float]],
                  records: list, start: float) -> None:
    worst = max(growth, key=growth.get) if growth else None
    rss_ok = worst is None or growth[worst] < RSS_TARGET_PCT
    live = [(r.received - start, r.latency_ms) for r in records if r.latency_ms is not None]
    trend = f", trend {_per_minute(live, 0.0):+.2f} ms/min" if len(live) >= 2 else ""
    if slices:
        (p50a, p99a), (p50b, p99b) = slices[0], slices[-1]
        drift_ok = p50b <= DRIFT_FACTOR * p50a + DRIFT_SLACK_MS
        drift = (f"p50 {p50a:.1f} → {p50b:.1f} ms, p99 {p99a:.1f} → {p99b:.1f} ms first → last "
                 f"slice{trend}")
    else:
        drift_ok, drift = False, "no live windows"
    worst_text = f"largest {growth[worst]:+.1f} % ({worst})" if worst else "no process"
    print(f"target: RSS growth < {RSS_TARGET_PCT:g} % per process: {worst_text}: "
          f"{'met' if rss_ok else 'NOT MET'}; no latency drift ({drift}): "
          f"{'met' if drift_ok else 'NOT MET'}")


def _per_minute(points: list[tuple[float, float]], t0: float) -> float:
    """Least-squares slope of (seconds, value) points, per minute; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    times, values = zip(*points)
    return float(np.polyfit(np.subtract(times, t0), values, 1)[0]) * 60
