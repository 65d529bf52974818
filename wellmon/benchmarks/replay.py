"""`wellmon bench replay`: how fast a recording is scored offline, in seconds of media per
second of wall time, with speech-to-text beside the video, inline, and off; and several
files at once (`--jobs`). Figures printed, never asserted."""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from wellmon.config import Config
from wellmon.models.node import replay
from wellmon.streamer import sources


def bench_replay(config: Config, runs: int = 3) -> int:
    clip = str(sources.SAMPLE_CLIP)
    media_s = replay.duration_s(clip) or 0.0
    print(f"bench replay: the sample clip ({media_s:.1f} s), {runs} runs each, "
          f"baseline whole recording, {replay.default_jobs()} CPUs", flush=True)
    off = replace(config, asr=replace(config.asr, engine="off"))
    cases = [("full stack, speech-to-text in its own process", config, True),
             ("full stack, speech-to-text inline (as before)", config, False),
             ("without speech-to-text", off, True)]
    for label, cfg, transcriber in cases:
        walls, cpus = [], []
        for _ in range(runs):
            cpu0 = _cpu_s()
            start = time.perf_counter()
            windows = sum(1 for _ in replay.windows(cfg, clip, baseline=replay.WHOLE,
                                                    transcriber=transcriber))
            walls.append(time.perf_counter() - start)
            cpus.append(_cpu_s() - cpu0)
        wall = statistics.median(walls)
        print(f"  {label}: {media_s / wall:.1f}x real time (median {wall:.2f} s wall, "
              f"{statistics.median(cpus):.2f} s CPU, {windows} windows)", flush=True)
    with tempfile.TemporaryDirectory() as out:
        for jobs in (1, 2):
            start = time.perf_counter()
            replay.replay_many(config, [clip, clip], Path(out) / f"jobs{jobs}", jobs,
                               replay.WHOLE, progress=False)
            wall = time.perf_counter() - start
            print(f"  two files, --jobs {jobs}: {2 * media_s / wall:.1f}x real time "
                  f"({wall:.2f} s wall for {2 * media_s:.0f} s of media)", flush=True)
    return 0


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the transcriber)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
