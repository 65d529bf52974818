"""A fixed, balanced matrix of synthetic clips for tuning and reporting (rPPG, blinks).

One photograph tuned on itself says little about other faces. This module defines about sixty
40 s clips of ``streamer.synthetic`` that vary everything that broke an outside test: pulse
amplitude (0.5-2 grey levels), sensor noise, skin tone, glasses, eyelid texture, face size and
width, head motion (still, small and slow, heavy and inside the heart-rate band) and heart rate
(50-135 bpm), plus no-pulse controls. All at 640x480, 30 fps, libx264 crf 20, no speech,
8-12 blinks at least 1.5 s apart.

Design: not a full factorial. 24 rows give each of nine factors a balanced column (every level
equally often), arranged by a deterministic swap search so that pairs of factors are as
balanced as 24 rows allow. Each row becomes a *pair* of cases that differ only in seed, heart
rate (same band), blink times and noise field; one case of each pair goes to the ``"tune"``
half and the other to the ``"report"`` half, so each half covers every level of every factor
and tuning never sees the clips it is reported on. Eight pairs of no-pulse controls (one with
heavy motion, the others still or small, every skin tone and glasses level) are split the
same way.

Names are stable (they depend only on this file): ``r07-a1.0-dark-thick-heavy`` is main case
7 (pulse 1.0 grey level, dark skin, thick glasses, heavy motion); ``n02-...`` a control.

    python -m wellmon.streamer.synthetic_matrix OUT_DIR [--half tune|report] [--only NAME ...]
        [--list]

``build`` makes the clips in worker processes and skips any whose ``NAME.json`` records the
same ``spec_sha256`` (sha256 of the generator version and the spec) next to ``NAME.mp4``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import functools
import hashlib
import itertools
import json
import multiprocessing
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wellmon.streamer.synthetic import GENERATOR_VERSION, ClipSpec, make_clip, to_json

HALVES = ("tune", "report")
DURATION_S = 40.0
BLINK_DURATION_S = 0.2
BLINK_MIN_GAP_S = 1.5  # start to start
BLINKS_RANGE = (8, 12)  # blinks per clip, inclusive
BLINK_WINDOW_S = (1.0, 38.8)  # blink starts lie in here
LIGHTING_DRIFT_RANGE = (0.02, 0.05)
HR_BANDS = {"low": (50.0, 75.0), "mid": (75.0, 105.0), "high": (105.0, 135.0)}
MOTION = {  # level: (motion_px, motion_hz_max)
    "still": (0.5, 0.25),
    "small": (3.0, 0.25),
    "heavy": (20.0, 1.5),
}
FACTORS: dict[str, tuple[Any, ...]] = {  # factor: its levels (as in Case.factors)
    "pulse_amplitude": (0.5, 1.0, 2.0),
    "noise_std": (1.5, 2.0, 3.0),
    "skin_tone": ("original", "light", "tan", "brown", "dark", "ruddy"),
    "glasses": ("none", "thin", "thick"),
    "eyelid": ("mirror", "smooth", "dark", "pale"),
    "motion": tuple(MOTION),
    "face_scale": (0.65, 1.0, 1.3),
    "face_aspect": (0.88, 1.0, 1.12),
    "hr_band": tuple(HR_BANDS),
}
N_PAIRS = 24  # divisible by every factor's number of levels
# No-pulse controls, one pair per motion level: the other factors of each pair, fixed.
_CONTROLS = (
    {"motion": "still", "skin_tone": "dark", "glasses": "thick", "eyelid": "smooth",
     "noise_std": 3.0, "face_scale": 1.0, "face_aspect": 1.12},
    {"motion": "small", "skin_tone": "original", "glasses": "none", "eyelid": "mirror",
     "noise_std": 1.5, "face_scale": 0.65, "face_aspect": 0.88},
    {"motion": "heavy", "skin_tone": "brown", "glasses": "thin", "eyelid": "dark",
     "noise_std": 2.0, "face_scale": 1.3, "face_aspect": 1.0},
    # Added later (names n07-n16): still and small motion are where a pulse is claimed, so
    # they need more than one control each; every skin tone and glasses level appears.
    {"motion": "still", "skin_tone": "light", "glasses": "thin", "eyelid": "pale",
     "noise_std": 2.0, "face_scale": 0.65, "face_aspect": 1.0},
    {"motion": "small", "skin_tone": "tan", "glasses": "thick", "eyelid": "dark",
     "noise_std": 3.0, "face_scale": 1.3, "face_aspect": 0.88},
    {"motion": "still", "skin_tone": "ruddy", "glasses": "none", "eyelid": "mirror",
     "noise_std": 1.5, "face_scale": 1.0, "face_aspect": 0.88},
    {"motion": "small", "skin_tone": "light", "glasses": "none", "eyelid": "smooth",
     "noise_std": 2.0, "face_scale": 1.0, "face_aspect": 1.12},
    {"motion": "small", "skin_tone": "dark", "glasses": "thin", "eyelid": "pale",
     "noise_std": 1.5, "face_scale": 0.65, "face_aspect": 1.0},
)
_BASE = {"duration_s": DURATION_S, "fps": 30.0, "width": 640, "height": 480, "crf": 20,
         "preset": "medium", "speech": (), "blink_duration_s": BLINK_DURATION_S}


@dataclass(frozen=True)
class Case:
    """One clip of the matrix: a stable name, its half, the spec and its factor levels."""

    name: str
    half: str  # "tune" or "report"
    spec: ClipSpec
    factors: dict[str, Any]  # FACTORS levels, plus "pulse" ("present"/"none") and "pair"

    def __hash__(self) -> int:  # factors is a dict; the name identifies a case
        return hash(self.name)


# ------------------------------------------------------------------------------ design


def _unit(*key: Any) -> float:
    """A stable pseudo-random number in [0, 1) for a key (sha256: no RNG version drift)."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def _imbalance(cols: dict[str, list[int]], only: str | None = None) -> float:
    """Sum over factor pairs (those with `only`, if given) of squared deviations of the
    level-pair counts from uniform."""
    total = 0.0
    for f, g in itertools.combinations(cols, 2):
        if only is not None and only not in (f, g):
            continue
        nf, ng = len(FACTORS[f]), len(FACTORS[g])
        counts = [0] * (nf * ng)
        for a, b in zip(cols[f], cols[g]):
            counts[a * ng + b] += 1
        expected = N_PAIRS / (nf * ng)
        total += sum((c - expected) ** 2 for c in counts)
    return total


@functools.lru_cache(maxsize=1)
def _design() -> tuple[dict[str, Any], ...]:
    """N_PAIRS rows of factor levels: each column balanced, factor pairs near-balanced."""
    cols: dict[str, list[int]] = {}
    for f, levels in FACTORS.items():
        order = sorted(range(N_PAIRS), key=lambda r, f=f: _unit("init", f, r))
        cols[f] = [order[r] % len(levels) for r in range(N_PAIRS)]
    for sweep in range(4):  # deterministic first-improvement swap search
        improved = False
        for f in list(FACTORS)[1:]:  # the first column stays as it is (symmetry)
            pairs = sorted(itertools.combinations(range(N_PAIRS), 2),
                           key=lambda ij, f=f, s=sweep: _unit("swap", s, f, ij))
            col = cols[f]
            cost = _imbalance(cols, only=f)  # a swap in column f changes only f's pairs
            for i, j in pairs:
                if col[i] == col[j]:
                    continue
                col[i], col[j] = col[j], col[i]
                new = _imbalance(cols, only=f)
                if new < cost - 1e-9:
                    cost, improved = new, True
                else:
                    col[i], col[j] = col[j], col[i]
        if not improved:
            break
    return tuple({f: FACTORS[f][cols[f][r]] for f in FACTORS} for r in range(N_PAIRS))


def _blink_times(key: tuple[Any, ...]) -> tuple[float, ...]:
    """8-12 blink starts in BLINK_WINDOW_S, at least BLINK_MIN_GAP_S apart, seeded by key."""
    lo, hi = BLINKS_RANGE
    n = lo + int(_unit(*key, "n") * (hi - lo + 1))
    gap = BLINK_MIN_GAP_S + 0.02  # rounding to 0.01 s cannot bring two closer than the gap
    free = (BLINK_WINDOW_S[1] - BLINK_WINDOW_S[0]) - (n - 1) * gap
    u = sorted(_unit(*key, "t", k) for k in range(n))
    return tuple(round(BLINK_WINDOW_S[0] + free * x + k * gap, 2) for k, x in enumerate(u))


def _spec(levels: dict[str, Any], *, seed: int, heart_rate: float | None,
          blinks: tuple[float, ...], drift: float) -> ClipSpec:
    px, hz = MOTION[levels["motion"]]
    return ClipSpec(
        **_BASE, heart_rate_bpm=heart_rate,
        pulse_amplitude=float(levels.get("pulse_amplitude") or 1.0),
        blink_times_s=blinks, motion_px=px, motion_hz_max=hz, lighting_drift=drift,
        noise_std=float(levels["noise_std"]), seed=seed, skin_tone=levels["skin_tone"],
        glasses=None if levels["glasses"] == "none" else levels["glasses"],
        eyelid=levels["eyelid"], face_scale=float(levels["face_scale"]),
        face_aspect=float(levels["face_aspect"]),
    )


@functools.lru_cache(maxsize=1)
def _all_cases() -> tuple[Case, ...]:
    out: list[Case] = []
    for pair, levels in enumerate(_design()):
        drift = round(LIGHTING_DRIFT_RANGE[0] + _unit("drift", pair)
                      * (LIGHTING_DRIFT_RANGE[1] - LIGHTING_DRIFT_RANGE[0]), 3)
        first_half = 0 if _unit("half", pair) < 0.5 else 1
        for member in (0, 1):
            idx = 2 * pair + member + 1
            lo, hi = HR_BANDS[levels["hr_band"]]
            hr = round(lo + _unit("hr", pair, member) * (hi - lo), 1)
            spec = _spec(levels, seed=1000 + idx, heart_rate=hr,
                         blinks=_blink_times(("blinks", pair, member)), drift=drift)
            name = (f"r{idx:02d}-a{levels['pulse_amplitude']:.1f}-{levels['skin_tone']}-"
                    f"{'noglass' if levels['glasses'] == 'none' else levels['glasses']}-"
                    f"{levels['motion']}")
            out.append(Case(name, HALVES[(member + first_half) % 2], spec,
                            {**levels, "pulse": "present", "pair": pair}))
    for pair, levels in enumerate(_CONTROLS):
        drift = round(0.02 + 0.01 * (pair % 4), 3)
        for member in (0, 1):
            idx = 2 * pair + member + 1
            spec = _spec(levels, seed=2000 + idx, heart_rate=None,
                         blinks=_blink_times(("control-blinks", pair, member)), drift=drift)
            name = (f"n{idx:02d}-{levels['skin_tone']}-"
                    f"{'noglass' if levels['glasses'] == 'none' else levels['glasses']}-"
                    f"{levels['motion']}")
            out.append(Case(name, HALVES[member], spec,
                            {**levels, "pulse_amplitude": None, "hr_band": None,
                             "pulse": "none", "pair": N_PAIRS + pair}))
    return tuple(out)


def cases(half: str | None = None) -> list[Case]:
    """The matrix (main cases, then no-pulse controls), or one half of it."""
    if half is not None and half not in HALVES:
        raise ValueError(f"half must be one of {HALVES} or None, not {half!r}")
    return [c for c in _all_cases() if half is None or c.half == half]


# ------------------------------------------------------------------------------ build


def spec_sha256(spec: ClipSpec) -> str:
    """Cache key of a clip: sha256 of the generator version and the spec (as JSON)."""
    d = dataclasses.asdict(spec)
    d["blink_times_s"] = list(spec.blink_times_s)
    d["speech"] = [list(u) for u in spec.speech]
    text = json.dumps({"generator_version": GENERATOR_VERSION, "spec": d}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(case: Case, out_dir: Path) -> dict[str, Any] | None:
    mp4, js = out_dir / f"{case.name}.mp4", out_dir / f"{case.name}.json"
    if not (mp4.is_file() and js.is_file()):
        return None
    try:
        truth = json.loads(js.read_text())
    except (OSError, ValueError):
        return None
    if truth.get("spec_sha256") != spec_sha256(case.spec):
        return None
    if truth.get("file_size") not in (None, mp4.stat().st_size):
        return None
    return truth


def _make(case: Case, out_dir: Path) -> dict[str, Any]:
    """Write NAME.mp4 then NAME.json (json last: a clip without its json is remade)."""
    mp4, js = out_dir / f"{case.name}.mp4", out_dir / f"{case.name}.json"
    tmp = out_dir / f".{case.name}.{os.getpid()}.tmp.mp4"
    try:
        truth = make_clip(tmp, case.spec)
        os.replace(tmp, mp4)
    finally:
        tmp.unlink(missing_ok=True)
    truth["file"] = mp4.name
    truth["file_size"] = mp4.stat().st_size
    truth["spec_sha256"] = spec_sha256(case.spec)
    truth["case"] = {"name": case.name, "half": case.half, "factors": case.factors}
    tmp_js = out_dir / f".{case.name}.{os.getpid()}.tmp.json"
    tmp_js.write_text(to_json(truth))
    os.replace(tmp_js, js)
    return truth


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # one clip per core; the encoder keeps its own threads


def build(out_dir: Path, cases: Sequence[Case], workers: int = 2
          ) -> list[tuple[Case, Path, dict[str, Any]]]:
    """Make the clips of `cases` in `out_dir` (cached by spec hash), in `workers` processes.

    Returns (case, mp4 path, ground truth) in the order of `cases`. The ground truth is
    make_clip's plus spec_sha256, file_size and case (name, half, factors).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError("case names must be unique")
    truths: dict[str, dict[str, Any]] = {}
    todo = []
    for c in cases:
        t = _cached(c, out_dir)
        if t is None:
            todo.append(c)
        else:
            truths[c.name] = t
    if todo and workers <= 1:
        for c in todo:
            truths[c.name] = _make(c, out_dir)
    elif todo:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                    initializer=_worker_init) as pool:
            futures = {pool.submit(_make, c, out_dir): c for c in todo}
            for fut in cf.as_completed(futures):
                truths[futures[fut].name] = fut.result()
    return [(c, out_dir / f"{c.name}.mp4", truths[c.name]) for c in cases]


# ------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wellmon.streamer.synthetic_matrix",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", type=Path, help="where NAME.mp4 / NAME.json go")
    ap.add_argument("--half", choices=HALVES)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="just these cases")
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    ap.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    args = ap.parse_args(argv)

    chosen = cases(args.half)
    if args.only:
        known = {c.name for c in chosen}
        missing = [n for n in args.only if n not in known]
        if missing:
            ap.error(f"unknown case(s) {missing}; see --list")
        chosen = [c for c in chosen if c.name in set(args.only)]
    if args.list:
        for c in chosen:
            s = c.spec
            hr = "none" if s.heart_rate_bpm is None else f"{s.heart_rate_bpm:g}"
            print(f"{c.name:34s} {c.half:6s} hr {hr:>5s} noise {s.noise_std:g} "
                  f"eyelid {s.eyelid:6s} scale {s.face_scale:g} aspect {s.face_aspect:g} "
                  f"drift {s.lighting_drift:g} blinks {len(s.blink_times_s)}")
        return 0
    if args.out_dir is None:
        ap.error("give OUT_DIR (or --list)")
    for c, path, _ in build(args.out_dir, chosen, workers=args.workers):
        print(f"{path}  ({c.half})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
