"""`wellmon bench rppg`: heart rate from generated faces, wellmon beside a textbook peer.

Each clip of the synthetic matrix (``streamer.synthetic_matrix``) is decoded as the node sees
a file (``sources.video_frames``: 15 fps, 640×480 at most), the face pipeline finds the
landmarks, and two traces are kept per frame: wellmon's skin regions (``rppg.face_skin`` via
``SkinSampler``) and the mean colour of a fixed face box (the landmarks' box in the first
frame with a face, the textbook set-up). The traces are cached per clip, so that methods and
gates can be compared without decoding again. Then, every ``HOP_S`` from 10 s on:

* **wellmon**: ``PulseEstimator`` as the node runs it (quality gate included);
* **textbook POS**: Wang et al.'s POS on the box trace, largest peak in 0.7-3.5 Hz, no gate;
* **learned** (when ``wellmon models build --rppg facephys`` has made it, or
  ``WELLMON_RPPG_ONNX`` names a file): models/perception/rppg_learned.py on the decoded frames.

Per method: median absolute error and coverage (windows with a value) on clips with a pulse,
and the share of windows wrongly given a value on no-pulse clips, by pulse amplitude and
motion; frames per second of each method's per-frame work.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wellmon.models.perception import rppg

TRACE_VERSION = "5"  # bump when what a trace holds or how it is made changes
HOP_S = 1.0
FIRST_S = 10.0
FPS = 15.0


@dataclass
class ClipTrace:
    """What rPPG methods see of one clip: per analysed frame, its time and skin colours."""

    times: np.ndarray  # (n,) seconds from the first frame
    regions: np.ndarray  # (n, K, 3) RGB per skin region, NaN where the region was unusable
    pixels: np.ndarray  # (n, K) skin pixels per region
    box: np.ndarray  # (n, 3) RGB mean of the fixed face box, NaN before the first face
    background: np.ndarray  # (n, 3) RGB mean of the scene around the face, NaN if none
    face_at: np.ndarray  # (n, 3) SkinSample.face, NaN without a face
    face: np.ndarray  # (n,) bool, a face was found
    seconds: dict[str, float]  # per-frame processing time by stage (median, seconds)


def trace_clip(path: Path) -> ClipTrace:
    """Decode a clip as the node does and keep the skin traces of every analysed frame."""
    from wellmon.models.perception.face import FacePipeline, FaceTrack
    from wellmon.streamer import sources

    faces = FacePipeline(["CPUExecutionProvider"], threads=1)
    sampler = rppg.SkinSampler()
    src = sources.Source("file", str(path), live=False)
    frames = sources.video_frames(src, FPS, 640, 480, loop=False,
                                  pacer=sources.Pacer(0, realtime=False))
    times, regions, pixels, box_rgb, found, scene, where = [], [], [], [], [], [], []
    cost: dict[str, list[float]] = {"face pipeline": [], "skin regions": [], "face box": []}
    box = None
    t0 = None
    track = FaceTrack()
    for t_ns, image in frames:
        t0 = t_ns if t0 is None else t0
        start = time.perf_counter()
        face = faces.process([(track, image)])[0]
        mid = time.perf_counter()
        sample = sampler.sample(image, face.landmarks if face.present else None)
        end = time.perf_counter()
        cost["face pipeline"].append(mid - start)
        cost["skin regions"].append(end - mid)
        if box is None and face.present:
            x0, y0, x1, y1 = face.box
            box = (x0, y0, x1 - x0, y1 - y0)
        start = time.perf_counter()
        box_rgb.append(rppg.box_means(image, box) if box is not None else None)
        cost["face box"].append(time.perf_counter() - start)
        times.append((t_ns - t0) / 1e9)
        found.append(face.present)
        k = len(rppg.REGIONS)
        regions.append(sample.rgb if sample is not None else np.full((k, 3), np.nan))
        scene.append(sample.background if sample is not None
                     and sample.background is not None else np.full(3, np.nan))
        where.append(sample.face if sample is not None else np.full(3, np.nan))
        pixels.append(sample.pixels if sample is not None else np.zeros(k, int))
    nan3 = np.full(3, np.nan)
    return ClipTrace(np.array(times), np.array(regions), np.array(pixels),
                     np.array([nan3 if v is None else v for v in box_rgb]), np.array(scene),
                     np.array(where), np.array(found),
                     {k: statistics.median(v) for k, v in cost.items()})


def cached_trace(path: Path, cache_dir: Path) -> ClipTrace:
    """trace_clip, cached by the clip's bytes and TRACE_VERSION."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cache = cache_dir / f"{path.stem}.{digest}.v{TRACE_VERSION}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return ClipTrace(z["times"], z["regions"], z["pixels"], z["box"], z["background"],
                             z["face_at"], z["face"], json.loads(str(z["seconds"])))
    trace = trace_clip(path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, times=trace.times, regions=trace.regions, pixels=trace.pixels,
             box=trace.box, background=trace.background, face_at=trace.face_at,
             face=trace.face,
             seconds=json.dumps(trace.seconds))
    tmp.replace(cache)
    return trace


# ----------------------------------------------------------------------------- methods


Estimate = tuple[float | None, float | None]  # (heart rate bpm or None, quality dB or None)


def _sample(trace: ClipTrace, i: int) -> rppg.SkinSample | None:
    """Frame i of a trace as face_skin gave it."""
    if not trace.face[i] or np.all(np.isnan(trace.regions[i])):
        return None
    scene = None if np.isnan(trace.background[i, 0]) else trace.background[i]
    return rppg.SkinSample(trace.regions[i], trace.pixels[i], scene, trace.face_at[i])


def wellmon_rates(trace: ClipTrace, ends: Sequence[float], **kw: Any) -> list[Estimate]:
    """PulseEstimator as the node runs it, asked at each end time."""
    est = rppg.PulseEstimator(**kw)
    out: list[Estimate] = []
    i = 0
    for t_end in ends:
        while i < trace.times.size and trace.times[i] <= t_end:
            sample = _sample(trace, i)
            est.insert(float(trace.times[i]), sample)
            i += 1
        e = est.estimate(t_end)
        out.append((e.heart_rate_bpm, e.quality))
    return out


def textbook_pos_rates(trace: ClipTrace, ends: Sequence[float],
                       window_s: float = 12.0) -> list[Estimate]:
    """POS on the fixed box's mean colour, largest in-band peak of the last window_s; no
    quality gate (a number whenever there are frames)."""
    out: list[Estimate] = []
    ok = ~np.isnan(trace.box[:, 0])
    for t_end in ends:
        sel = ok & (trace.times > t_end - window_s) & (trace.times <= t_end)
        if np.count_nonzero(sel) < FPS * 4:
            out.append((None, None))
            continue
        t = trace.times[sel]
        grid = np.arange(t[0], t[-1], 1.0 / FPS)
        rgb = np.stack([np.interp(grid, t, trace.box[sel, c]) for c in range(3)], axis=1)
        pulse = rppg.bandpass(rppg.pos_pulse(rgb, FPS), FPS)
        f0, snr = rppg.spectral_peak(pulse, FPS)
        out.append((round(60 * f0, 2), round(snr, 2)))
    return out


METHODS: dict[str, Callable[[ClipTrace, Sequence[float]], list[Estimate]]] = {
    "wellmon": wellmon_rates,
    "textbook POS (face box)": textbook_pos_rates,
}


def learned_rates(path: Path, model: Path, ends: Sequence[float]) -> list[Estimate]:
    """The learned model (models/perception/rppg_learned.py) over a clip decoded as the node
    sees it, fed the face pipeline's landmarks; an estimate at each end time."""
    from wellmon.models.perception.face import FacePipeline, FaceTrack
    from wellmon.models.perception.rppg_learned import learned_heart_rates
    from wellmon.streamer import sources

    faces = FacePipeline(["CPUExecutionProvider"], threads=1)
    frames = []
    t0 = None
    track = FaceTrack()
    for t_ns, image in sources.video_frames(sources.Source("file", str(path), live=False),
                                            FPS, 640, 480, loop=False,
                                            pacer=sources.Pacer(0, realtime=False)):
        t0 = t_ns if t0 is None else t0
        face = faces.process([(track, image)])[0]
        frames.append(((t_ns - t0) / 1e9, image, face.landmarks if face.present else None))
    found = learned_heart_rates([(t, im) for t, im, _ in frames], [lm for *_, lm in frames],
                                model, min_window_s=FIRST_S, hop_s=HOP_S)
    by_end = {round(e.t_end_s, 3): (e.heart_rate_bpm, e.quality) for e in found}
    return [by_end.get(round(t, 3), (None, None)) for t in ends]


# ----------------------------------------------------------------------------- scoring


@dataclass
class ClipResult:
    name: str
    factors: dict[str, Any]
    truth_bpm: float | None
    estimates: list[Estimate]

    @property
    def given(self) -> list[float]:
        return [hr for hr, _ in self.estimates if hr is not None]

    @property
    def coverage(self) -> float:
        return len(self.given) / len(self.estimates) if self.estimates else 0.0

    @property
    def errors(self) -> list[float]:
        return [] if self.truth_bpm is None else [abs(h - self.truth_bpm) for h in self.given]


def window_ends(trace: ClipTrace) -> list[float]:
    last = float(trace.times[-1]) if trace.times.size else 0.0
    return [float(t) for t in np.arange(FIRST_S, last + 1e-9, HOP_S)]


def summarize(results: Iterable[ClipResult]) -> dict[str, Any]:
    """Median error, coverage and how often a pulse is claimed where there is none."""
    results = list(results)
    pulse = [r for r in results if r.truth_bpm is not None]
    none = [r for r in results if r.truth_bpm is None]
    errors = [e for r in pulse for e in r.errors]
    windows = sum(len(r.estimates) for r in pulse)
    return {
        "clips": len(pulse),
        "median_error_bpm": round(statistics.median(errors), 2) if errors else None,
        "within_5_bpm": round(sum(e <= 5 for e in errors) / windows, 3) if windows else None,
        "coverage": round(sum(len(r.given) for r in pulse) / windows, 3) if windows else None,
        "no_pulse_clips": len(none),
        "no_pulse_null": (round(1 - sum(len(r.given) for r in none)
                                / sum(len(r.estimates) for r in none), 3) if none else None),
    }


def evaluate(traced: Sequence[tuple[Any, ClipTrace, dict[str, Any]]],
             methods: dict[str, Callable[[ClipTrace, Sequence[float]], list[Estimate]]]
             = METHODS) -> dict[str, list[ClipResult]]:
    """Every method on every (case, trace, truth): the per-window estimates, by method."""
    out: dict[str, list[ClipResult]] = {name: [] for name in methods}
    for case, trace, truth in traced:
        ends = window_ends(trace)
        for name, run in methods.items():
            out[name].append(ClipResult(case.name, dict(case.factors),
                                        truth["heart_rate_bpm"], run(trace, ends)))
    return out


def _estimate_cost(trace: ClipTrace, repeat: int = 20) -> float:
    """Median seconds of one PulseEstimator.estimate (12 s window) on a real trace."""
    ends = window_ends(trace)[:repeat]
    times = []
    est = rppg.PulseEstimator()
    i = 0
    for t_end in ends:
        while i < trace.times.size and trace.times[i] <= t_end:
            est.insert(float(trace.times[i]), _sample(trace, i))
            i += 1
        start = time.perf_counter()
        est.estimate(t_end)
        times.append(time.perf_counter() - start)
    return statistics.median(times) if times else float("nan")


def _row(label: str, s: dict[str, Any]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)
    return (f"  {label:<34} clips {s['clips']:>2}  median error {f(s['median_error_bpm'], '5.2f')}"
            f" bpm  coverage {f(s['coverage'], '5.1%')}  within 5 bpm "
            f"{f(s['within_5_bpm'], '5.1%')}")


def default_clips_dir() -> Path:
    """Generated clips can be made again, so they live in the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wellmon" / "rppg-matrix"


def bench_rppg(half: str, clips_dir: Path, workers: int = 2) -> int:
    """Build (or reuse) the matrix's clips, trace them, print each method's figures."""
    from wellmon.streamer import synthetic_matrix

    chosen = synthetic_matrix.cases(None if half == "all" else half)
    print(f"bench rppg: {len(chosen)} generated clips ({half} half of "
          f"streamer.synthetic_matrix) in {clips_dir}; windows every {HOP_S:g} s from "
          f"{FIRST_S:g} s, {FPS:g} fps as the node sees them", flush=True)
    built = synthetic_matrix.build(clips_dir, chosen, workers=workers)
    traced = [(case, cached_trace(path, clips_dir / "traces"), truth)
              for case, path, truth in built]
    results = evaluate(traced)
    model = learned_model()
    if model is not None:
        print(f"learned model: {model}", flush=True)
        start = time.perf_counter()
        results["learned (FacePhys ONNX)"] = [
            ClipResult(case.name, dict(case.factors), truth["heart_rate_bpm"],
                       learned_rates(path, model, window_ends(trace)))
            for (case, path, truth), (_, trace, _) in zip(built, traced)]
        learned_s = time.perf_counter() - start
    for name, clips in results.items():
        print(f"\n{name}")
        print(_row("all clips with a pulse", summarize(clips)))
        for factor in ("pulse_amplitude", "motion", "glasses", "skin_tone"):
            levels = sorted({str(r.factors.get(factor)) for r in clips
                             if r.truth_bpm is not None})
            for level in levels:
                sel = [r for r in clips if r.truth_bpm is not None
                       and str(r.factors.get(factor)) == level]
                print(_row(f"{factor} {level}", summarize(sel)))
        for amplitude in sorted({r.factors.get("pulse_amplitude") for r in clips
                                 if r.truth_bpm is not None}):
            sel = [r for r in clips if r.truth_bpm is not None and r.factors.get("motion")
                   in ("still", "small") and r.factors.get("pulse_amplitude") == amplitude]
            print(_row(f"pulse {amplitude}, still or small motion", summarize(sel)))
        s = summarize(clips)
        if s["no_pulse_clips"]:
            print(f"  no-pulse clips {s['no_pulse_clips']}: null in {s['no_pulse_null']:.1%} "
                  "of windows")
    first = traced[0][1]
    cost = {k: statistics.median([t.seconds[k] for _, t, _ in traced]) for k in first.seconds}
    print("\nper-frame cost (median over clips, one thread): " + "  ".join(
        f"{k} {v * 1e3:.2f} ms ({1 / v:,.0f} frames/s)" for k, v in cost.items() if v > 0))
    print(f"wellmon PulseEstimator.estimate (20 s window, 3 methods): "
          f"{_estimate_cost(first) * 1e3:.2f} ms per call")
    if model is not None:
        frames = sum(t.times.size for _, t, _ in traced)
        print(f"learned model, whole clips (decoding and face pipeline included): "
              f"{frames / learned_s:.0f} frames/s")
    else:
        print("learned model: not installed (wellmon models build --rppg facephys adds it)")
    return 0


def learned_model() -> Path | None:
    """The learned rPPG model if `wellmon models build --rppg facephys` has made it."""
    from wellmon.models.tools.rppg_build import default_path

    path = Path(os.environ.get("WELLMON_RPPG_ONNX") or default_path("facephys"))
    return path if path.exists() else None
