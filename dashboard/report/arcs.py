"""The emotional arc of a recording: its valence smoothed, and the basic shape it is nearest.

Reagan et al. ("The emotional arcs of stories are dominated by six basic shapes", EPJ Data
Science 5, 2016) found six shapes in the sentiment of stories; Chu and Roy (ICDM 2017, seed
000) found such arcs in films from their audio and visual valence. Here a session's arc is
its windows' valence, smoothed and matched to the six shapes:

* **Smoothing**: a Gaussian over time with sigma = `SMOOTH_FRACTION` of the recording (at
  least `MIN_SIGMA_S`), on an even grid of `POINTS` points from the first window's centre to
  the last one's. The arc of a story is its slow movement: a sigma of a twentieth of the
  length keeps a shape of three turns (the most any template has) and drops a single
  window's swing.
* **Shapes**: the templates below over normalised time u in [0, 1]; a shape is the nearest
  template by Pearson correlation with the smoothed arc, reported with its correlation and
  the runner-up's. Each template is also tried on warped time (u ** w for w in `WARPS`)
  and keeps its best correlation: a story whose turn comes early or late is still the
  same shape.
* **Flat**: an arc whose smoothed valence moves by less than `FLAT_RANGE` (max - min, on
  valence's -1..1 scale) has no shape: it is reported as flat, not forced into one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

POINTS = 100
SMOOTH_FRACTION = 0.05
MIN_SIGMA_S = 2.0
FLAT_RANGE = 0.1
MIN_WINDOWS = 5
WARPS = (0.6, 0.75, 0.9, 1.0, 1.1, 1.3, 1.6)


SHAPES: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "rise": ("rags to riches", lambda u: u),
    "fall": ("tragedy", lambda u: -u),
    "fall-rise": ("man in a hole", lambda u: -np.sin(np.pi * u)),
    "rise-fall": ("Icarus", lambda u: np.sin(np.pi * u)),
    "rise-fall-rise": ("Cinderella", lambda u: -np.cos(3 * np.pi * u)),
    "fall-rise-fall": ("Oedipus", lambda u: np.cos(3 * np.pi * u)),
}
"""name → (Reagan et al.'s name for it, template over normalised time u in [0, 1])."""


@dataclass(frozen=True)
class Arc:
    """A recording's arc: `t_s` and `valence` the smoothed curve (seconds on the windows'
    clock); `shape` the nearest template's name, "flat", or None (too few windows, then
    `reason` says why); `similarity` its correlation, `runner_up` the next shape."""

    t_s: list[float]
    valence: list[float]
    shape: str | None
    similarity: float | None
    runner_up: str | None
    runner_up_similarity: float | None
    sigma_s: float | None
    reason: str | None = None
    warp: float | None = None
    """The time warp (u ** warp) under which the shape matched best."""

    @property
    def story_name(self) -> str | None:
        return SHAPES[self.shape][0] if self.shape in SHAPES else None

    def template(self) -> list[float] | None:
        """The matched template scaled onto the arc (least squares), for drawing beside it."""
        if self.shape not in SHAPES or self.warp is None:
            return None
        template = SHAPES[self.shape][1](np.linspace(0.0, 1.0, POINTS) ** self.warp)
        y = np.asarray(self.valence)
        a, b = np.polyfit(template, y, 1)
        return [round(float(v), 4) for v in a * template + b]

    def to_dict(self) -> dict[str, object]:
        return {"shape": self.shape, "story": self.story_name, "similarity": self.similarity,
                "runner_up": self.runner_up, "runner_up_similarity": self.runner_up_similarity,
                "time_warp": self.warp, "smoothing_sigma_s": self.sigma_s,
                "reason": self.reason,
                "t_s": self.t_s, "valence": self.valence, "template": self.template()}


def arc_of(times_s: Sequence[float], valence: Sequence[float | None]) -> Arc:
    """The arc of windows at `times_s` (their centres) with these valences (None: the window
    had none; left out)."""
    pairs = sorted((t, v) for t, v in zip(times_s, valence)
                   if v is not None and math.isfinite(v) and math.isfinite(t))
    if len(pairs) < MIN_WINDOWS:
        return Arc([], [], None, None, None, None, None,
                   f"too few windows with a valence ({len(pairs)} < {MIN_WINDOWS})")
    t = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    span = float(t[-1] - t[0])
    if span <= 0:
        return Arc([], [], None, None, None, None, None, "the windows span no time")
    sigma = max(MIN_SIGMA_S, SMOOTH_FRACTION * span)
    grid = np.linspace(t[0], t[-1], POINTS)
    weights = np.exp(-0.5 * ((grid[:, None] - t[None, :]) / sigma) ** 2)
    smooth = weights @ v / weights.sum(axis=1)
    curve_t = [round(float(x), 3) for x in grid]
    curve_v = [round(float(x), 4) for x in smooth]
    if float(smooth.max() - smooth.min()) < FLAT_RANGE:
        return Arc(curve_t, curve_v, "flat", None, None, None, round(sigma, 2))
    u = np.linspace(0.0, 1.0, POINTS)
    ranked = sorted((max((float(np.corrcoef(smooth, template(u ** w))[0, 1]), w)
                         for w in WARPS), name)
                    for name, (_, template) in SHAPES.items())[::-1]
    ((best, warp), name), ((second, _), runner_up) = ranked[0], ranked[1]
    return Arc(curve_t, curve_v, name, round(best, 3), runner_up, round(second, 3),
               round(sigma, 2), warp=warp)
