"""`wellmon bench capacity`: how many streams one machine carries, and what a GPU would.

For n = 1, 2, 3, … real-time streams of the sample clip (640×480 at 15 fps,
16 kHz audio) through the normal node (perception, fusion, speech-to-text), it
measures p99 capture→browser latency, every kind of drop and the CPU each
process used, and stops at the first n with drops or a p99 over the limit: the
largest n before it is what this machine holds. Then it prints, as arithmetic
and not as a measurement, the face models' and the fusion network's FLOPs
(counted from the ONNX graphs) and how many streams a GPU of a given
effective speed would carry, to size a GPU node without having one.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wellmon.benchmarks import (
    ScoreClient,
    StolenCpu,
    StreamDrops,
    asr_counts,
    counter_delta,
    counts_text,
    cpu_seconds,
    drops_by_stream,
    fleet,
    process_tree,
    require_psutil,
    sigterm_as_interrupt,
    stolen_text,
)
from wellmon.config import Config
from wellmon.harness import Processes
from wellmon.models import WEIGHTS

WARMUP_S = 15.0
P99_LIMIT_MS = 250.0
DRIFT_LIMIT_MS = 50.0
"""A step whose latency median rises by more than this from its first third to its last is
not keeping up: the node's queue grows, and a longer run would end in skipped frames."""
ASR_BACKLOG_LIMIT = 10
"""Audio chunks (100 ms) per stream the speech-to-text worker's queue may grow by in a step;
more and it is falling behind: transcripts come later and later, then audio is dropped."""
FUSION_STEPS = 8  # a 4 s window in 0.5 s steps
FACE_MODELS = (
    ("detection (BlazeFace short range)", "face_detection_short_range.onnx"),
    ("landmarks (face mesh)", "face_landmark.onnx"),
    ("expression (mini-XCEPTION)", "emotion_minixception.onnx"),
)


@dataclass
class Step:
    """One n: what it measured and whether it held."""

    streams: int
    windows: int
    latencies: list[float]
    drops: dict[str, StreamDrops]
    rejected: dict[str, int]
    drift_ms: float  # latency median, last third of the step minus first third
    asr_dropped: int  # audio chunks the speech-to-text worker's full queue turned away
    asr_backlog: int  # growth of the speech-to-text worker's queue over the step, in chunks
    cpu: dict[str, float]  # % of one core, by process group
    per_process: dict[str, float]  # % of one core, by process
    wall_s: float
    stolen: str  # how much CPU the hypervisor took meanwhile, as text ("" if unknown)

    @property
    def p99(self) -> float:
        return float(np.percentile(self.latencies, 99)) if self.latencies else float("inf")

    @property
    def dropped(self) -> int:
        return sum(d.total for d in self.drops.values()) + sum(self.rejected.values())

    @property
    def held(self) -> bool:
        return not _failures(self)


def bench_capacity(config: Config, max_streams: int = 8, seconds: float = 60.0,
                   gpu_tflops: float = 10.0, warmup_s: float = WARMUP_S) -> int:
    """Streams 1..max_streams until one fails; the largest n that held and its CPU per
    stream; then the GPU arithmetic."""
    require_psutil()
    if max_streams < 1 or seconds <= 0 or gpu_tflops <= 0:
        print("wellmon bench capacity: --max-streams must be at least 1, --seconds and "
              "--gpu-tflops > 0")
        return 2
    print(f"bench capacity: the sample clip at {config.capture.video_max_width}x"
          f"{config.capture.video_max_height} max, {config.capture.video_fps:g} fps, 16 kHz "
          f"audio, real time; the normal node (perception, fusion, speech-to-text: "
          f"{config.asr.engine}); {seconds:g} s per n after {warmup_s:g} s warm-up; holds "
          f"while nothing is dropped, p99 ≤ {P99_LIMIT_MS:g} ms and the latency median "
          f"rises by at most {DRIFT_LIMIT_MS:g} ms from the first third of the step to the "
          f"last, and speech-to-text keeps up; {os.cpu_count()} CPUs", flush=True)
    print(f"{'n':>3} {'windows':>7}  {'latency ms p50':>14} {'p95':>6} {'p99':>6} {'rise':>5}  "
          f"{'drops':>5}  CPU % of one core: node (with its workers) dashboard captures "
          f"total per-stream")
    steps: list[Step] = []
    crashed = ""
    with sigterm_as_interrupt():
        try:
            for n in range(1, max_streams + 1):
                try:
                    step = _run_step(config, n, seconds, warmup_s)
                except RuntimeError as exc:  # a process died: n did not hold
                    crashed = f"n = {n}: {exc}"
                    print(f"{n:>3} FAILED: {str(exc).splitlines()[0]}", flush=True)
                    break
                steps.append(step)
                _print_step(step)
                if not step.held:
                    break
        except KeyboardInterrupt:
            print("bench capacity: interrupted; every process stopped", flush=True)
            return 130
    held = [s for s in steps if s.held]
    if held:
        best = held[-1]
        per = {k: v / best.streams for k, v in best.cpu.items()}
        print(f"largest n that held: {best.streams} stream(s); CPU per stream (% of one core): "
              f"node {per['node']:.0f}, captures {per['captures']:.0f}, all processes "
              f"{per['total']:.0f} (dashboard {best.cpu['dashboard']:.1f} in all)")
        print(f"  CPU by process at n = {best.streams} (% of one core): "
              + ", ".join(f"{name} {pct:.0f}" for name, pct in best.per_process.items()))
    else:
        print("largest n that held: none (even one stream dropped or was too slow)")
    if crashed:
        print(f"  {crashed}")
    elif steps and not steps[-1].held:
        print(f"  n = {steps[-1].streams} failed: {_why(steps[-1])}")
    elif steps:
        print(f"  every n up to --max-streams {max_streams} held")
    print_gpu_arithmetic(config, gpu_tflops)
    return 0


def _run_step(config: Config, n: int, seconds: float, warmup_s: float) -> Step:
    names = [f"cap-{i}" for i in range(1, n + 1)]
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="wellmon-capacity-") as state, \
            fleet(config, Path(state), token) as pipeline:
        pipeline.start_pipeline(dict.fromkeys(names, "sample"), epoch=True)
        with ScoreClient(pipeline.ws_url(), token) as client:
            _sleep(pipeline, client, warmup_s)
            processes = process_tree(pipeline)
            cpu0 = {name: cpu_seconds(p) for name, p in processes.items()}
            node0, start = dict(client.node_stats), time.time()
            stolen = StolenCpu()
            _sleep(pipeline, client, seconds)
            end = time.time()
            cpu1 = {name: cpu_seconds(p) for name, p in processes.items()}
            node1 = dict(client.node_stats)
            records = client.between(start, end)
            before = [r for r in client.records if r.received < start]
    wall = end - start
    cpu = {"node": 0.0, "dashboard": 0.0, "captures": 0.0}
    per_process: dict[str, float] = {}
    for name in cpu0:
        if cpu0[name] is None or cpu1.get(name) is None:
            continue
        per_process[name] = (cpu1[name] - cpu0[name]) / wall * 100
        group = ("captures" if name.startswith("capture-") else
                 "dashboard" if name.startswith("dashboard") else "node")
        cpu[group] += per_process[name]
    cpu["total"] = sum(cpu.values())
    drops = drops_by_stream(records, before, config.node.hop_s)
    for stream in names:  # a stream that sent no window at all lost everything
        if stream not in drops:
            drops[stream] = StreamDrops(skipped_windows=int(seconds / config.node.hop_s))
    timed = sorted((r.received, r.latency_ms) for r in records if r.latency_ms is not None)
    latencies = [ms for _, ms in timed]
    return Step(n, len(records), latencies, drops,
                counter_delta(node1.get("rejected", {}), node0.get("rejected", {})),
                _drift_ms(latencies), *asr_counts(node0, node1),
                cpu, per_process, wall, stolen_text(stolen))


def _drift_ms(latencies: list[float]) -> float:
    """Median of the last third minus median of the first (latencies in arrival order)."""
    third = len(latencies) // 3
    if third == 0:
        return 0.0
    return float(np.median(latencies[-third:]) - np.median(latencies[:third]))


def _sleep(pipeline: Processes, client: ScoreClient, seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(min(1.0, max(0.0, until - time.monotonic())))
        pipeline.check_alive()
        client.check()


def _print_step(step: Step) -> None:
    if step.latencies:
        p50, p95, p99 = np.percentile(step.latencies, [50, 95, 99])
        lat = f"{p50:14.1f} {p95:6.1f} {p99:6.1f} {step.drift_ms:+5.0f}"
    else:
        lat = f"{'–':>14} {'–':>6} {'–':>6} {'–':>5}"
    cpu = step.cpu
    print(f"{step.streams:>3} {step.windows:>7}  {lat}  {step.dropped:>5}  "
          f"{cpu['node']:>4.0f} {cpu['dashboard']:>4.0f} {cpu['captures']:>4.0f} "
          f"{cpu['total']:>4.0f} {cpu['total'] / step.streams:>4.0f}   "
          f"{'held' if step.held else 'FAILED: ' + _why(step)}  (load average "
          f"{os.getloadavg()[0]:.1f}{step.stolen})", flush=True)


def _why(step: Step) -> str:
    return "; ".join(_failures(step)) or "held"


def _failures(step: Step) -> list[str]:
    """Why the step did not hold, one reason per rule it broke (none: it held)."""
    reasons = []
    if not step.latencies:
        reasons.append("no live windows")
    elif step.p99 > P99_LIMIT_MS:
        reasons.append(f"p99 {step.p99:.0f} ms > {P99_LIMIT_MS:g} ms")
    if step.latencies and step.drift_ms > DRIFT_LIMIT_MS:
        reasons.append(f"falling behind: median latency +{step.drift_ms:.0f} ms within the "
                       f"step")
    if step.asr_dropped:
        reasons.append(f"speech-to-text dropped {step.asr_dropped} audio chunks")
    if step.asr_backlog > ASR_BACKLOG_LIMIT * step.streams:
        reasons.append(f"speech-to-text falling behind: its queue grew by "
                       f"{step.asr_backlog} audio chunks")
    totals = {"media gaps": sum(d.media_gaps_video + d.media_gaps_audio
                                for d in step.drops.values()),
              "late frames": sum(d.late_video for d in step.drops.values()),
              "score gaps": sum(d.score_gaps for d in step.drops.values()),
              "skipped windows": sum(d.skipped_windows for d in step.drops.values()),
              "windows not live": sum(d.not_live for d in step.drops.values())}
    if any(totals.values()):
        reasons.append("drops: " + counts_text({k: v for k, v in totals.items() if v}))
    if step.rejected:
        reasons.append("node rejected: " + counts_text(step.rejected))
    return reasons


# --- GPU arithmetic --------------------------------------------------------------------------

def model_flops(path: Path, dims: dict[str, int]) -> float:
    """FLOPs of one run of an ONNX model: Conv, MatMul and Gemm only (2 per multiply-add;
    activations, pooling and additions are left out: they are a few percent), with the
    shapes `onnx.shape_inference` derives for the given sizes of the symbolic dimensions."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    for value in model.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                size = dims[dim.dim_param]
                dim.Clear()
                dim.dim_value = size
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int | None]] = {
        value.name: [d.dim_value if d.HasField("dim_value") else None
                     for d in value.type.tensor_type.shape.dim]
        for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    shapes.update({init.name: list(init.dims) for init in inferred.graph.initializer})
    total = 0.0
    for node in inferred.graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        a, b, y = (shapes.get(node.input[0]), shapes.get(node.input[1]),
                   shapes.get(node.output[0]))
        needed = (b, y) if node.op_type == "Conv" else (a, y)
        if any(not shape or None in shape for shape in needed):
            raise ValueError(f"{path.name}: no static shape for {node.op_type} {node.name}")
        if node.op_type == "Conv":  # weight: (out, in / groups, kh, kw)
            total += 2.0 * np.prod(y) * np.prod(b[1:])
        elif node.op_type == "Gemm":
            trans_a = next((att.i for att in node.attribute if att.name == "transA"), 0)
            total += 2.0 * np.prod(y) * (a[0] if trans_a else a[1])
        else:
            total += 2.0 * np.prod(y) * a[-1]
    return total


def print_gpu_arithmetic(config: Config, tflops: float) -> None:
    """FLOPs per frame and per window from the graphs, and streams per GPU: arithmetic."""
    print(f"GPU arithmetic (not a measurement: FLOPs counted in the ONNX graphs of "
          f"{WEIGHTS.relative_to(WEIGHTS.parents[1])}/, Conv/MatMul/Gemm, 2 per multiply-add):")
    try:
        per_call = {label: model_flops(WEIGHTS / file, {"N": 1}) for label, file in FACE_MODELS}
        fusion = model_flops(WEIGHTS / "fusion_default.onnx",
                             {"batch": 1, "steps": FUSION_STEPS})
    except ImportError:
        print("  needs the onnx package (pip install onnx, or pip install -e '.[train]')")
        return
    every = config.perception.detect_every
    per_frame = 0.0
    for label, flops in per_call.items():
        share = flops / every if label.startswith("detection") else flops
        per_frame += share
        note = f", on 1 frame in {every} → {share / 1e6:.1f} M per frame" if share != flops else ""
        print(f"  {label:<36} {flops / 1e6:7.1f} MFLOPs per call{note}")
    fps = config.capture.video_fps
    windows_per_s = 1.0 / config.node.hop_s
    per_stream = fps * per_frame + windows_per_s * fusion
    streams = tflops * 1e12 / per_stream
    print(f"  FLOPs per frame:  {per_frame / 1e6:.1f} MFLOPs (face models; detection amortised)")
    print(f"  FLOPs per window: {fusion / 1e6:.2f} MFLOPs (fusion, {FUSION_STEPS} steps, "
          f"one window per {config.node.hop_s:g} s per stream)")
    print(f"  per stream: {fps:g} fps × {per_frame / 1e6:.1f} M + {windows_per_s:g}/s × "
          f"{fusion / 1e6:.2f} M = {per_stream / 1e9:.2f} GFLOP/s")
    print(f"  a GPU with {tflops:g} TFLOPS effective: {tflops:g}e12 / {per_stream / 1e9:.2f}e9 "
          f"= {streams:,.0f} streams at {fps:g} fps (models only: decoding, cropping, the "
          f"voice features, speech-to-text and the node's Python loop stay on the CPU and "
          f"are not in this figure)")
