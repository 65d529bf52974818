"""Blink detection against synthetic clips with known blinks: F1 within 200 ms and onset error.

A blink found counts as a hit when its onset lies within ``tol_s`` (200 ms, issue 15) of a
true blink start that no other found blink has claimed (greedy, nearest first); every other
found blink is a false positive and every unclaimed true blink a miss. The onset error is
the signed (found - true) onset of the hits, in ms.

``evaluate_clip`` decodes a clip as the node does (``streamer.sources.video_frames`` at the
analysis frame rate), runs ``models.perception.face.FacePipeline`` and
``models.perception.behaviour.BehaviourTracker`` on it and scores the blink onsets against
the clip's ground truth. The landmarks of a clip are cached next to it
(``.landmarks.npz``), so tuning the detector re-runs only the tracker.

Run ``python -m wellmon.benchmarks.blinks [--half tune|report|both] [--fps 15 30]``: it builds
the clips of ``streamer.synthetic_matrix`` (or a small built-in set of the bundled face when
that module is not there) under ``--dir`` and prints one line per case and totals per group.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOL_S = 0.2


@dataclass(frozen=True)
class BlinkScore:
    """Matching of found onsets against true ones."""

    hits: int
    false_pos: int
    misses: int
    onset_errors_s: tuple[float, ...]  # found - true, per hit

    @property
    def precision(self) -> float:
        n = self.hits + self.false_pos
        return self.hits / n if n else 1.0

    @property
    def recall(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 1.0

    @property
    def f1(self) -> float:
        n = 2 * self.hits + self.false_pos + self.misses
        return 2 * self.hits / n if n else 1.0

    @property
    def mean_onset_error_ms(self) -> float | None:
        return 1e3 * float(np.mean(self.onset_errors_s)) if self.onset_errors_s else None

    @property
    def mean_abs_onset_error_ms(self) -> float | None:
        return (1e3 * float(np.mean(np.abs(self.onset_errors_s)))
                if self.onset_errors_s else None)

    def __add__(self, other: BlinkScore) -> BlinkScore:
        return BlinkScore(self.hits + other.hits, self.false_pos + other.false_pos,
                          self.misses + other.misses,
                          self.onset_errors_s + other.onset_errors_s)

    def line(self) -> str:
        err = self.mean_abs_onset_error_ms
        bias = self.mean_onset_error_ms
        return (f"F1 {self.f1:.3f}  hits {self.hits}  false {self.false_pos}  "
                f"missed {self.misses}  onset |err| "
                + ("-" if err is None else f"{err:.0f} ms (bias {bias:+.0f} ms)"))


EMPTY = BlinkScore(0, 0, 0, ())


def match_onsets(found: Iterable[float], truth: Iterable[float], tol_s: float = TOL_S
                 ) -> BlinkScore:
    """Greedy one-to-one matching, closest pairs first, within tol_s."""
    found, truth = sorted(found), sorted(truth)
    pairs = sorted((abs(f - t), i, j) for i, f in enumerate(found)
                   for j, t in enumerate(truth) if abs(f - t) <= tol_s)
    used_f: set[int] = set()
    used_t: set[int] = set()
    errors = []
    for _, i, j in pairs:
        if i in used_f or j in used_t:
            continue
        used_f.add(i)
        used_t.add(j)
        errors.append(found[i] - truth[j])
    return BlinkScore(len(errors), len(found) - len(errors), len(truth) - len(errors),
                      tuple(errors))


# ----------------------------------------------------------------------------- one clip


def _frames(path: Path, fps: float) -> Iterable[tuple[float, np.ndarray]]:
    from wellmon.streamer import sources

    src = sources.Source("file", str(path), live=False)
    for t_ns, image in sources.video_frames(src, fps, 10_000, 10_000, loop=False,
                                            pacer=sources.Pacer(0, realtime=False)):
        yield t_ns / 1e9, image


def clip_landmarks(path: Path, fps: float, faces: Any = None, cache_dir: Path | None = None
                   ) -> list[np.ndarray | None]:
    """The face pipeline's landmarks per analysed frame, cached in cache_dir (default:
    beside the clip) and remade when the clip is newer."""
    cache = (cache_dir or path.parent) / f"{path.stem}.{fps:g}fps.landmarks.npz"
    if cache.exists() and cache.stat().st_mtime >= path.stat().st_mtime:
        data = np.load(cache)
        pts, present = data["points"], data["present"]
        return [p if ok else None for p, ok in zip(pts, present)]
    if faces is None:
        faces = default_faces()
    from wellmon.models.perception.face import FaceTrack

    track = FaceTrack()
    out: list[np.ndarray | None] = []
    for _, image in _frames(path, fps):
        (face,) = faces.process([(track, image)])
        out.append(face.landmarks if face.present else None)
    pts = np.array([p if p is not None else np.full((468, 3), np.nan) for p in out],
                   np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, points=pts, present=np.array([p is not None for p in out]))
    return out


def default_faces() -> Any:
    from wellmon.models.perception.face import FacePipeline

    return FacePipeline(["CPUExecutionProvider"], threads=1)


def run_tracker(path: Path, fps: float, landmarks: Sequence[np.ndarray | None],
                make_tracker: Callable[[], Any] | None = None) -> Any:
    """Feed the clip's frames and landmarks to a fresh BehaviourTracker; return it."""
    from wellmon.models.perception.behaviour import BehaviourTracker

    tracker = (make_tracker or BehaviourTracker)()
    for (t_s, image), points in zip(_frames(path, fps), landmarks):
        tracker.update(t_s, points, (image.shape[1], image.shape[0]), image)
    return tracker


def evaluate_clip(path: Path, truth: dict[str, Any], fps: float, faces: Any = None,
                  make_tracker: Callable[[], Any] | None = None,
                  cache_dir: Path | None = None) -> BlinkScore:
    """Blink onsets found in the clip against truth["blink_intervals_s"] starts."""
    tracker = run_tracker(path, fps, clip_landmarks(path, fps, faces, cache_dir),
                          make_tracker)
    found = [b.onset_s for b in tracker.blinks.blinks]
    return match_onsets(found, [a for a, _ in truth["blink_intervals_s"]])


# ----------------------------------------------------------------------------- cases


# (glasses, eyelid, skin tone, motion, face scale, face aspect) per clip of each half
_MATRIX = {
    "tune": [(None, "mirror", "original", "small", 1.0, 1.0),
             ("thin", "smooth", "tan", "still", 0.9, 1.05),
             ("thick", "dark", "light", "small", 1.1, 0.95),
             (None, "pale", "brown", "small", 0.8, 1.0),
             ("thick", "mirror", "ruddy", "heavy", 1.0, 1.0),
             (None, "smooth", "dark", "heavy", 1.0, 1.1)],
    "report": [(None, "smooth", "light", "still", 1.0, 0.9),
               (None, "dark", "tan", "small", 1.2, 1.0),
               ("thin", "pale", "original", "small", 0.85, 1.0),
               ("thick", "smooth", "brown", "still", 1.0, 1.1),
               ("thin", "mirror", "dark", "small", 1.1, 1.0),
               ("thick", "pale", "ruddy", "small", 0.9, 0.95),
               (None, "mirror", "brown", "heavy", 1.0, 1.0),
               ("thick", "dark", "original", "heavy", 1.0, 1.0)],
}
_MOTION = {"still": (0.5, 0.25), "small": (3.0, 0.25), "heavy": (8.0, 1.5)}  # px, Hz max


def _builtin_cases(half: str) -> list[tuple[str, Any]]:
    """A small matrix of the face variants of ``streamer.synthetic`` (glasses, eyelids, skin
    tones, face shape, motion), for when ``streamer.synthetic_matrix`` is not there: 30 s
    clips, 640x480, 30 fps, crf 20, noise 2, 12 blinks of 150-300 ms at random times; seeds
    and variant combinations differ between the halves."""
    from wellmon.streamer.synthetic import ClipSpec

    fields = {f.name for f in dataclasses.fields(ClipSpec)}
    rng = np.random.default_rng(0 if half == "tune" else 1)
    out = []
    for k, (glasses, eyelid, skin, motion, scale, aspect) in enumerate(_MATRIX[half]):
        times = np.cumsum(rng.uniform(1.6, 2.8, 12)) + 1.0
        px, hz = _MOTION[motion]
        extra = {"glasses": glasses, "eyelid": eyelid, "skin_tone": skin, "face_scale": scale,
                 "face_aspect": aspect, "motion_hz_max": hz}
        spec = ClipSpec(duration_s=float(times[-1] + 1.5), fps=30.0, speech=(),
                        blink_times_s=tuple(round(float(t), 3) for t in times),
                        blink_duration_s=round(float(rng.uniform(0.15, 0.3)), 3),
                        noise_std=2.0, crf=20, motion_px=px,
                        seed=2 * k + (0 if half == "tune" else 101), heart_rate_bpm=72.0,
                        preset="veryfast", **{k2: v for k2, v in extra.items() if k2 in fields})
        name = (f"{half}{k}-{glasses or 'noglasses'}-{eyelid}-{skin}-{motion}")
        out.append((name, spec))
    return out


def _matrix() -> Any:
    try:
        from wellmon.streamer import synthetic_matrix
    except ImportError:
        return None
    return synthetic_matrix


def cases(half: str, builtin: bool = False) -> list[tuple[str, Any]]:
    """(name, ClipSpec) of one half: of ``streamer.synthetic_matrix`` if it is there (and
    builtin is False), else of the small built-in set."""
    matrix = None if builtin else _matrix()
    if matrix is None:
        return _builtin_cases(half)
    return [(c.name, c.spec) for c in matrix.cases(half=half)]


def build(out_dir: Path, named: Sequence[tuple[str, Any]]) -> list[tuple[str, Path, dict]]:
    """Make each clip (once) and its truth JSON under out_dir: through
    ``synthetic_matrix.build`` (its cache, two worker processes) for matrix cases."""
    from wellmon.streamer.synthetic import make_clip, to_json

    matrix = _matrix()
    if matrix is not None:
        by_name = {c.name: c for c in matrix.cases()}
        if named and all(name in by_name for name, _ in named):
            return [(c.name, path, truth) for c, path, truth in
                    matrix.build(out_dir, [by_name[name] for name, _ in named])]
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for name, spec in named:
        path = out_dir / f"{name}.mp4"
        meta = path.with_suffix(".json")
        key = json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)
        if path.exists() and meta.exists():
            truth = json.loads(meta.read_text())
            if truth.get("_spec_key") == key:
                made.append((name, path, truth))
                continue
        truth = make_clip(path, spec)
        truth["_spec_key"] = key
        meta.write_text(to_json(truth))
        made.append((name, path, truth))
    return made


def group_of(name: str, truth: dict[str, Any]) -> str:
    """Report group: glasses or not, and motion class."""
    spec = truth.get("spec", {})
    glasses = spec.get("glasses") or ("glasses" in name and "noglasses" not in name)
    motion = float(spec.get("motion_px", 0.0))
    kind = ("heavy motion" if motion > 5.0 or float(spec.get("motion_hz_max", 0.25)) > 0.5
            else "still/small motion")
    return f"{'glasses' if glasses else 'no glasses'}, {kind}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wellmon.benchmarks.blinks",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--half", choices=("tune", "report", "both"), default="report")
    ap.add_argument("--fps", type=float, nargs="+", default=[15.0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/wellmon-blink-bench"),
                    help="clips (made there if missing); DIR/HALF for the built-in set")
    ap.add_argument("--cache", type=Path, default=None,
                    help="landmark caches (default: DIR/landmarks)")
    ap.add_argument("--builtin", action="store_true",
                    help="the small built-in set, not streamer.synthetic_matrix")
    ap.add_argument("--only", default="", help="substring of the case names to run")
    args = ap.parse_args(argv)
    halves = ("tune", "report") if args.half == "both" else (args.half,)
    faces = default_faces()
    for half in halves:
        named = [c for c in cases(half, args.builtin) if args.only in c[0]]
        clip_dir = args.dir / half if args.builtin or _matrix() is None else args.dir
        made = build(clip_dir, named)
        cache = args.cache or args.dir / "landmarks"
        for fps in args.fps:
            groups: dict[str, BlinkScore] = {}
            total = EMPTY
            print(f"== {half} half, {fps:g} fps", flush=True)
            for name, path, truth in made:
                score = evaluate_clip(path, truth, fps, faces, cache_dir=cache)
                print(f"  {name:40s} {score.line()}", flush=True)
                g = group_of(name, truth)
                groups[g] = groups.get(g, EMPTY) + score
                total = total + score
            for g, s in sorted(groups.items()):
                print(f"  [{g}] {s.line()}")
            print(f"  [all] {total.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

