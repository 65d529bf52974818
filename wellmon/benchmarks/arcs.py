"""`wellmon bench arcs`: how often the emotional arc's shape is named right, by the arc's
swing and the noise on each window's valence (docs/reports.md). The six shapes are drawn
by hand here, not from the templates: other curvatures and turning points."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wellmon.dashboard.report.arcs import arc_of

SHAPE_CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rise": lambda u: u ** 1.5,
    "fall": lambda u: 1 - np.sqrt(u),
    "fall-rise": lambda u: np.interp(u, [0, 0.4, 1], [0.8, -1, 1]),
    "rise-fall": lambda u: np.interp(u, [0, 0.6, 1], [-0.7, 1, -1]),
    "rise-fall-rise": lambda u: np.interp(u, [0, 0.35, 0.7, 1], [-0.5, 1, -1, 0.6]),
    "fall-rise-fall": lambda u: np.interp(u, [0, 0.3, 0.65, 1], [0.5, -1, 1, -0.5]),
}


def valence_series(shape: str, seconds: float, seed: int, warp: float,
                   noise: float = 0.15, swing: float = 0.5) -> tuple[list[float], list[float]]:
    """A window every 0.5 s (its centre, its valence): the shape over time warped by
    u ** warp, scaled to `swing` (max - min), plus white noise of SD `noise`."""
    rng = np.random.default_rng(seed)
    t = np.arange(2.0, seconds, 0.5)
    u = ((t - t[0]) / (t[-1] - t[0])) ** warp
    curve = np.asarray(SHAPE_CURVES[shape](u), float)
    curve = (curve - curve.mean()) / np.ptp(curve) * swing
    return list(t), list(np.clip(curve + rng.normal(0, noise, t.size), -1, 1))


def bench_arcs(per_cell: int = 20, seed: int = 123) -> int:
    rng = np.random.default_rng(seed)
    print(f"bench arcs: {per_cell} series per shape and cell, lengths 45 s to 1 h, time "
          "warps u^0.7 to u^1.4, a window every 0.5 s")
    for swing in (0.1, 0.2, 0.5):
        for noise in (0.15, 0.3):
            right = flat = total = 0
            for shape in SHAPE_CURVES:
                for k in range(per_cell):
                    seconds = float(rng.choice([45, 120, 600, 3600]))
                    warp = float(rng.uniform(0.7, 1.4))
                    arc = arc_of(*valence_series(shape, seconds, 1000 + k, warp, noise, swing))
                    total += 1
                    right += arc.shape == shape
                    flat += arc.shape == "flat"
            print(f"  swing {swing:g}, noise SD {noise:g}: {100 * right / total:.0f} % named "
                  f"right, {100 * flat / total:.0f} % flat ({total} series)")
    return 0
