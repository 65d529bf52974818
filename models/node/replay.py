"""Offline replay: a file through the node's own windowing, as fast as the machine allows.

The items come from the same readers as live capture (unpaced, clock starting
at 0, so times are seconds from the file's start) and reach the windower in
the order a live node would see them: a frame when it is captured, an audio
chunk when its last sample is. The output is one JSON score message per line
and a small summary report beside it.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from wellmon.config import Config
from wellmon.models.fusion.features import FusionInput
from wellmon.models.node.outputs import output_file
from wellmon.models.node.windowing import Windower
from wellmon.streamer import sources
from wellmon.streamer.wire.protocol import AudioChunk, Media, VideoFrame
from wellmon.streamer.wire.score import ScoreMessage


def _arrivals(config: Config, path: str, stream: str) -> Iterator[tuple[int, Media]]:
    """(arrival time ns, item) for both modalities, merged in arrival order."""
    cap = config.capture
    plan = sources.plan(path, stream)
    pacer = sources.Pacer(epoch_ns=0, realtime=False)
    feeds = []
    if plan.video:
        frames = sources.video_frames(plan.video, cap.video_fps, cap.video_max_width,
                                      cap.video_max_height, loop=False, pacer=pacer)
        feeds.append(((t, VideoFrame(stream, i, t, img, cap.video_fps))
                      for i, (t, img) in enumerate(frames)))
    if plan.audio:
        blocks = sources.audio_blocks(plan.audio, cap.audio_chunk_ms, loop=False, pacer=pacer)
        chunks = (AudioChunk(stream, i, t, x, sources.AUDIO_RATE)
                  for i, (t, x) in enumerate(blocks))
        feeds.append((c.t_capture_ns + c.duration_ns, c) for c in chunks)
    return heapq.merge(*feeds, key=lambda pair: pair[0])


def windows(config: Config, path: str, progress: bool = False
            ) -> Iterator[tuple[ScoreMessage, FusionInput]]:
    """Every window of `path` with its fusion inputs, as the live node would cut them."""
    stream = config.capture.stream or sources.stream_id_for(path)
    duration = _duration_s(path)
    windower = Windower.from_config(config, live=False)
    bar = tqdm(total=round(duration, 1) if duration else None, unit="s", disable=not progress,
               desc=f"replay {Path(path).name}", bar_format="{l_bar}{bar}| {n:.1f}/{total} s")
    try:
        for arrival_ns, item in _arrivals(config, path, stream):
            item.t_received_ns = item.t_sent_ns = arrival_ns
            windower.insert([item], arrival_ns)
            yield from windower.process_windows(arrival_ns)
            bar.update(max(0.0, min(arrival_ns / 1e9, duration or 0) - bar.n))
    finally:
        bar.close()
        windower.perception.close()


def replay(config: Config, path: str, out: Path, progress: bool = True) -> dict[str, Any]:
    """Write the score messages of `path` to `out` (JSONL) and the summary report beside it;
    return the report. Both files appear only when the whole run succeeded (a failed run
    leaves existing ones as they were), and an unreadable `path` fails before either is
    touched."""
    sources.plan(path)
    scores: list[ScoreMessage] = []
    with output_file(out) as sink, output_file(report_path(out)) as report_sink:
        for score, _ in windows(config, path, progress):
            sink.write(json.dumps(score.to_dict(), allow_nan=False) + "\n")
            scores.append(score)
        summary = report(path, scores)
        report_sink.write(json.dumps(summary, indent=2) + "\n")
    return summary


def report_path(out: Path) -> Path:
    """Where the summary report of a replay into `out` goes."""
    return out.with_suffix(".report.json")


def _duration_s(path: str) -> float | None:
    import av

    plan = sources.plan(path)
    src = plan.video or plan.audio
    with av.open(src.target) as container:
        return container.duration / 1e6 if container.duration else None


def report(path: str, scores: list[ScoreMessage]) -> dict[str, Any]:
    """Per-signal mean, min and max over the windows, and how many windows had each modality.
    Signals that are not numbers (``blink_times``, a list per window) are not summarised."""
    signals: dict[str, dict[str, float]] = {}
    names = sorted({k for s in scores for k in s.signals})
    for name in names:
        values = [v for s in scores if isinstance(v := s.signals.get(name), (int, float))]
        if values:
            signals[name] = {"mean": float(np.mean(values)), "min": float(np.min(values)),
                             "max": float(np.max(values))}
    return {
        "source": path,
        "windows": len(scores),
        "span_s": [scores[0].t_start, scores[-1].t_end] if scores else None,
        "windows_with": {m: sum(1 for s in scores if s.quality[m]["present"])
                         for m in ("video", "audio")},
        "signals": signals,
        "note": "wellness indicator, not a diagnosis",
    }
