"""`wellmon bench latency`, `bench perception`, `bench fusion`: figures printed, never asserted
(the machines are shared and noisy). The longer runs have modules of their own beside this."""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wellmon.config import Config
from wellmon.harness import LocalPipeline
from wellmon.live_reader import arrivals, open_dashboard_ws

if TYPE_CHECKING:
    from wellmon.models.fusion.serving import FusionModel

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
        with open_dashboard_ws(pipeline.ws_url(), token) as ws:
            start = time.monotonic()
            for received, message in arrivals(ws, WARMUP_S + seconds, silence_s=10):
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


def _sample_frames(count: int) -> list[np.ndarray]:
    """The sample clip's frames at the analysis rate (640×480, 15 fps), decoded once."""
    from wellmon.streamer import sources

    src = sources.parse_one("sample")
    frames = sources.video_frames(src, 15.0, 640, 480, loop=True,
                                  pacer=sources.Pacer(0, realtime=False))
    return [image for _, (_t, image) in zip(range(count), frames)]


def _ms(samples: list[float]) -> str:
    p50, p95 = np.percentile(np.array(samples) * 1e3, [50, 95])
    return f"median {p50:.2f} ms  p95 {p95:.2f} ms"


def bench_perception(frames_n: int = 300) -> int:
    """Per-frame cost of each face model and the whole face pipeline on one CPU thread,
    throughput at batch 1, 8 and 32, and the cost of the audio features."""
    from wellmon.models.perception.face import FacePipeline, FaceTrack

    faces = FacePipeline(["CPUExecutionProvider"], threads=1)
    frames = _sample_frames(frames_n)
    print(f"bench perception: sample clip, {len(frames)} frames of "
          f"{frames[0].shape[1]}x{frames[0].shape[0]}, onnxruntime CPU, 1 thread", flush=True)
    stages: dict[str, list[float]] = {"detection": [], "landmarks": [], "expression": [],
                                      "face pipeline (tracking, detect every 10)": []}
    for image in frames:
        started = time.perf_counter()
        region = faces.detect([image])[0]
        stages["detection"].append(time.perf_counter() - started)
        started = time.perf_counter()
        points, _ = faces.landmarks([image], [region])[0]
        stages["landmarks"].append(time.perf_counter() - started)
        box = (*points[:, :2].min(axis=0), *points[:, :2].max(axis=0))
        started = time.perf_counter()
        faces.expressions([image], [box])
        stages["expression"].append(time.perf_counter() - started)
    track = FaceTrack()
    for image in frames:
        started = time.perf_counter()
        faces.process([(track, image)])
        stages["face pipeline (tracking, detect every 10)"].append(time.perf_counter() - started)
    for name, samples in stages.items():
        print(f"  {name:<42} {_ms(samples)}")
    for batch in (1, 8, 32):
        streams = [FaceTrack() for _ in range(batch)]
        started = time.perf_counter()
        done = 0
        for i in range(0, len(frames) - batch + 1, batch):
            faces.process(list(zip(streams, frames[i:i + batch])))
            done += batch
        rate = done / (time.perf_counter() - started)
        print(f"  throughput at batch {batch:>2}: {rate:.0f} frames/s")
    _bench_audio()
    return 0


def _bench_audio() -> None:
    """Voice features (with a window every 0.5 s, as the node asks) and speech-to-text,
    in ms of CPU per second of the sample clip's audio."""
    from wellmon.models.perception.asr import PocketsphinxRecognizer
    from wellmon.models.perception.voice import VoiceAnalyzer
    from wellmon.streamer import sources

    blocks = list(sources.audio_blocks(sources.parse_one("sample"), 100, loop=False,
                                       pacer=sources.Pacer(0, realtime=False)))
    seconds = sum(len(b) for _, b in blocks) / sources.AUDIO_RATE
    voice = VoiceAnalyzer()
    started = time.perf_counter()
    for i, (t_ns, samples) in enumerate(blocks):
        voice.insert(t_ns, samples)
        if i % 5 == 4:
            voice.window(t_ns - 4_000_000_000, t_ns)
    voice_ms = (time.perf_counter() - started) * 1e3 / seconds
    recognizer = PocketsphinxRecognizer()
    started = time.perf_counter()
    for t_ns, samples in blocks:
        recognizer.insert_audio_chunk(t_ns, samples)
        recognizer.process_iter()
    asr_ms = (time.perf_counter() - started) * 1e3 / seconds
    print(f"  voice features: {voice_ms:.1f} ms per second of audio ({seconds:.0f} s of audio)")
    print(f"  speech-to-text (pocketsphinx): {asr_ms:.0f} ms per second of audio "
          f"(real-time factor {asr_ms / 1e3:.2f})")


RECORDING_WINDOWS = 240
"""Windows of the recording `bench fusion` runs as replay does: 2 minutes at a 0.5 s hop."""


def bench_fusion(model_path: str | Path | None, seconds: float = 3.0,
                 archs: Sequence[str] = ()) -> int:
    """Fusion windows per second at batch 1, 8 and 64 on one onnxruntime thread, the
    per-window latency at batch 1 (realistic masks: some steps and modalities missing), and
    a whole recording run as replay runs it. With ``archs``: a freshly exported network of
    each architecture instead of a file (needs torch), with its size; an untrained one runs
    exactly as fast as a trained one."""
    from wellmon.models.fusion.serving import FusionModel

    if not archs:
        _bench_fusion_model(FusionModel(model_path, threads=1), seconds)
        return 0
    from wellmon.models.training.architectures import make_network
    from wellmon.models.training.export import export_onnx
    from wellmon.models.training.size import flops_per_window, parameters

    with tempfile.TemporaryDirectory() as folder:
        for arch in archs:
            net = make_network(arch)
            path = export_onnx(net, Path(folder) / f"{arch}.onnx", "untrained")
            print(f"bench fusion --arch {arch}: {parameters(net):,} parameters, "
                  f"{flops_per_window(net):,} FLOPs a window")
            _bench_fusion_model(FusionModel(path, threads=1), seconds)
    return 0


def _bench_fusion_model(model: FusionModel, seconds: float) -> None:
    from wellmon.models.fusion.features import random_window

    rng = np.random.default_rng(0)
    print(f"bench fusion: {model.describe()}, 1 onnxruntime thread, {seconds:g} s per size")
    for batch in (1, 8, 64):
        windows = [(model.new_context(), random_window(rng)) for _ in range(batch)]
        took = _repeat(partial(model.run, windows), seconds)
        line = f"  batch {batch:>2}: {batch * len(took) / sum(took):8.0f} windows/s"
        if batch == 1:
            line += f"   latency per window: {_ms(took)}"
        print(line)
    recording = [random_window(rng) for _ in range(RECORDING_WINDOWS)]
    took = _repeat(partial(model.run_recording, recording), seconds)
    how = "window after window" if model.causal else "two batched passes: not causal, replay only"
    print(f"  a recording of {RECORDING_WINDOWS} windows ({how}): "
          f"{RECORDING_WINDOWS * len(took) / sum(took):8.0f} windows/s")


def _repeat(run: Callable[[], object], seconds: float) -> list[float]:
    """Seconds each call of ``run`` took, over ``seconds`` after one warm-up call."""
    run()
    took: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        run()
        took.append(time.perf_counter() - t0)
    return took
