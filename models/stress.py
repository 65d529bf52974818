"""Expert stress index: baseline-relative physiology and expression, 0-100 around "your usual".

This is a wellness indicator, not a diagnosis. The weights below are an expert prior taken from
the literature, not fitted to any labelled data (no labelled stress data is reachable from this
project); the index says "further from your usual, in the direction that stress usually moves
these signals", nothing more.

How a window is scored:

1. Inputs (``INPUTS``) are read from the window's ``signals`` and ``emotions``;
   ``negative_affect`` is the probability mass of angry + disgust + fear + sad.
2. Each input becomes a z-score against the person's or the session's ``Baseline`` (median and
   1.4826 x MAD, with a per-signal floor on the scale, ``SCALE_FLOORS``), is multiplied by its
   sign (``SIGNS``: "more stressed" is positive) and clipped to +-``Z_CLIP``.
3. The clipped z-scores are averaged with ``WEIGHTS``, renormalised over the inputs present.
4. The mean z maps to 0-100 by ``100 / (1 + exp(-LOGISTIC_SLOPE * z))``: z = 0 -> 50 ("your
   usual"), z = +1 -> 82, z = +2 -> 95, z = -1 -> 18; clipping keeps it within 1.1-98.9.

The quality gate (``MIN_FACE_PRESENT``, ``MIN_INPUTS``, ``PHYSIOLOGICAL``) returns a value of
None with a reason rather than a number it cannot stand behind; a missing face is
"inconclusive", never zero stress.

The session baseline is the first ``BASELINE_S`` seconds of windows and is then frozen
(``StressIndex(adapt=False)``, the default), so that a rise over the session stays visible
instead of being absorbed into the baseline.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INPUTS: tuple[str, ...] = (
    "heart_rate", "hrv_rmssd", "blink_rate", "f0_mean", "jitter", "negative_affect",
)
"""Inputs in a fixed order; all but ``negative_affect`` are keys of the window's ``signals``."""

NEGATIVE_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "sad")

SIGNS: dict[str, int] = {
    "heart_rate": +1,
    "hrv_rmssd": -1,
    "blink_rate": +1,
    "f0_mean": +1,
    "jitter": +1,
    "negative_affect": +1,
}
"""Direction in which each input moves under stress (+1: up means more stressed).

* heart rate rises and HRV (RMSSD, vagal tone) falls under acute stress (Kim et al. 2018,
  "Stress and heart rate variability: a meta-analysis and review of the literature").
* blink rate: signed "up", not |z|. Blink rate rises with stress, anxiety and arousal
  (Haak et al. 2009; Giannakakis et al. 2017, "Stress and anxiety detection using facial cues
  from videos"), whereas a fall mostly reflects focused visual attention or cognitive load
  (Stern et al. 1984), which is not stress; so only a rise counts upward.
* F0 rises under stress (Giddens et al. 2013, "Vocal indices of stress: a review"); jitter
  tends to rise, with mixed evidence (same review).
* negative affect (angry + disgust + fear + sad) up, relative to the person's own usual level,
  since people differ a lot in resting expression and the model in its bias per face.
"""

WEIGHTS: dict[str, float] = {
    "heart_rate": 0.25,
    "hrv_rmssd": 0.25,
    "f0_mean": 0.20,
    "jitter": 0.05,
    "blink_rate": 0.10,
    "negative_affect": 0.15,
}
"""Expert prior, sums to 1; physiology 0.75, behaviour and expression 0.25.

Physiology (heart rate, HRV, voice pitch, jitter) is weighted more than expression because
it is under little voluntary control and its stress response is the best replicated
(Kim et al. 2018; Giddens et al. 2013), whereas facial expression is a social display that can
be masked, and the expression model is weak (66 % on FER2013 by its authors). Heart rate and
HRV share the largest weight; pitch is next as the physiological signal of the voice; jitter
is small because the evidence is mixed and it is noisy over a 4 s window; blink rate is small
because its direction depends on the task.
"""

SCALE_FLOORS: dict[str, float] = {
    "heart_rate": 3.0,
    "hrv_rmssd": 5.0,
    "blink_rate": 3.0,
    "f0_mean": 5.0,
    "jitter": 0.1,
    "negative_affect": 0.10,
}
"""Smallest scale (in the signal's unit) a baseline may have, so steady baselines do not
explode z-scores.

* heart_rate 3 bpm: resting heart rate drifts by a few bpm (breathing, posture) and rPPG is
  checked to within 3 bpm, so a smaller change is not evidence of anything.
* hrv_rmssd 5 ms: short-window RMSSD is noisy; a few ms is within its measurement error.
* blink_rate 3 per minute: a one-minute count changes by a few blinks at random.
* f0_mean 5 Hz (about 0.7 semitone at 120 Hz): mean pitch moves that much between
  utterances with intonation alone.
* jitter 0.1 percentage points: about the spread of local jitter between calm utterances.
* negative_affect 0.10: the expression model's probabilities wander that much on a calm face.
"""

PHYSIOLOGICAL: tuple[str, ...] = ("heart_rate", "hrv_rmssd", "f0_mean")
"""At least one of these must be scored: expression and blinks alone are too weak to stand on.
Pitch counts: it follows laryngeal muscle tension and arousal, and it keeps the index alive
when only the voice is available. Jitter does not count (mixed evidence)."""

FACE_INPUTS: tuple[str, ...] = ("heart_rate", "hrv_rmssd", "blink_rate", "negative_affect")
VOICE_INPUTS: tuple[str, ...] = ("f0_mean", "jitter")

MIN_FACE_PRESENT = 0.5
"""Face-derived inputs are dropped when a face was found in less than this fraction of frames:
rPPG, blinks and expression over a mostly faceless window describe the few frames left."""
MIN_INPUTS = 2
"""At least this many inputs, including one of ``PHYSIOLOGICAL``, or the result is None."""

Z_CLIP = 3.0
"""Each z-score is clipped so that one wild input (an rPPG octave error) cannot carry the index."""
LOGISTIC_SLOPE = 1.5
"""z = +1 (one robust SD above your usual on the weighted mean) reads 82."""

BASELINE_S = 60.0
MIN_BASELINE_SAMPLES = 10
"""Valid windows a signal needs before its baseline is used (5 s of hops at 0.5 s; windows
overlap, so fewer would be one or two independent measurements)."""
MAX_BASELINE_SAMPLES = 1200
"""Bounded memory per signal (10 minutes of 0.5 s hops); the oldest drop out first."""

MAD_TO_SD = 1.4826
BASELINE_VERSION = 1


def _finite(value: Any) -> float | None:
    """A float, or None for None, NaN, inf, booleans and anything non-numeric."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def negative_affect(emotions: Mapping[str, Any] | None) -> float | None:
    """Probability mass of angry + disgust + fear + sad, or None without a usable distribution."""
    if not emotions:
        return None
    total = 0.0
    for name in NEGATIVE_EMOTIONS:
        p = _finite(emotions.get(name))
        if p is None:
            return None
        total += p
    return float(min(1.0, max(0.0, total)))


def extract_inputs(
    signals: Mapping[str, Any] | None, emotions: Mapping[str, Any] | None
) -> dict[str, float | None]:
    """The index's inputs from a window's ``signals`` and ``emotions`` (None where missing)."""
    signals = signals or {}
    inputs: dict[str, float | None] = {
        name: _finite(signals.get(name)) for name in INPUTS if name != "negative_affect"
    }
    inputs["negative_affect"] = negative_affect(emotions)
    return inputs


@dataclass(frozen=True)
class SignalStats:
    """Robust centre and scale of one signal's baseline; ``scale`` is already floored."""

    median: float
    scale: float
    n: int


class Baseline:
    """Running robust statistics (median, floored 1.4826 x MAD) of each input.

    Keeps the last ``max_samples`` valid values per input, so that medians are exact and the
    baseline can be stored and extended later; ``person_id`` names whose it is (None for a
    session baseline).
    """

    def __init__(
        self,
        person_id: str | None = None,
        min_samples: int = MIN_BASELINE_SAMPLES,
        max_samples: int = MAX_BASELINE_SAMPLES,
    ) -> None:
        self.person_id = person_id
        self.min_samples = max(1, int(min_samples))
        self.max_samples = max(self.min_samples, int(max_samples))
        self._samples: dict[str, deque[float]] = {
            name: deque(maxlen=self.max_samples) for name in INPUTS
        }
        self._cache: dict[str, SignalStats | None] = {}

    def add(self, inputs: Mapping[str, Any]) -> None:
        """Adds one window's valid values (None, NaN and unknown names are skipped)."""
        for name, value in inputs.items():
            x = _finite(value)
            if name in self._samples and x is not None:
                self._samples[name].append(x)
                self._cache.pop(name, None)

    def count(self, name: str) -> int:
        return len(self._samples.get(name, ()))

    def stats(self, name: str) -> SignalStats | None:
        """Median and floored scale, or None until ``min_samples`` valid values exist."""
        if name not in self._cache:
            values = self._samples.get(name)
            if values is None or len(values) < self.min_samples:
                self._cache[name] = None
            else:
                x = np.asarray(values, dtype=np.float64)
                median = float(np.median(x))
                mad = float(np.median(np.abs(x - median)))
                scale = max(MAD_TO_SD * mad, SCALE_FLOORS.get(name, 1e-6))
                self._cache[name] = SignalStats(median, scale, len(x))
        return self._cache[name]

    def is_ready(self, name: str) -> bool:
        return self.stats(name) is not None

    @property
    def ready_inputs(self) -> list[str]:
        return [name for name in INPUTS if self.is_ready(name)]

    @property
    def ready(self) -> bool:
        """Whether enough signals have a baseline to score a window (see ``MIN_INPUTS``)."""
        names = self.ready_inputs
        return len(names) >= MIN_INPUTS and any(n in PHYSIOLOGICAL for n in names)

    def z(self, name: str, value: float) -> float | None:
        """Unsigned, unclipped z-score of ``value`` against this baseline, or None."""
        stats = self.stats(name)
        if stats is None:
            return None
        return (value - stats.median) / stats.scale

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (samples plus the derived statistics, for reading)."""
        stats = {}
        for name in INPUTS:
            s = self.stats(name)
            if s is not None:
                stats[name] = {"median": s.median, "scale": s.scale, "n": s.n}
        return {
            "version": BASELINE_VERSION,
            "person_id": self.person_id,
            "min_samples": self.min_samples,
            "max_samples": self.max_samples,
            "samples": {name: list(self._samples[name]) for name in INPUTS},
            "stats": stats,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        """Rebuilds a baseline from ``to_dict``; the statistics are recomputed from the samples."""
        version = data.get("version")
        if version != BASELINE_VERSION:
            raise ValueError(f"unsupported baseline version {version!r}")
        baseline = cls(
            person_id=data.get("person_id"),
            min_samples=int(data.get("min_samples", MIN_BASELINE_SAMPLES)),
            max_samples=int(data.get("max_samples", MAX_BASELINE_SAMPLES)),
        )
        samples = data.get("samples") or {}
        for name in INPUTS:
            values: Iterable[Any] = samples.get(name) or ()
            for value in values:
                baseline.add({name: value})
        return baseline


@dataclass(frozen=True)
class StressResult:
    """One window's index.

    ``value`` is 0-100 (50 = your usual) or None, then ``reason`` says why. ``contributions``
    maps each used input to its share of the combined z (renormalised weight x signed, clipped
    z; they sum to the z that the logistic maps). ``excluded`` maps inputs not used to why.
    ``signed_z`` is each used input's signed, clipped z: the fusion model's stress input.
    """

    value: float | None
    reason: str | None
    contributions: dict[str, float] = field(default_factory=dict)
    inputs_used: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    signed_z: dict[str, float] = field(default_factory=dict)


def logistic_map(z: float) -> float:
    """Combined z to 0-100: 50 at z = 0, ``LOGISTIC_SLOPE`` sets how fast it saturates."""
    return float(100.0 / (1.0 + math.exp(-LOGISTIC_SLOPE * z)))


def face_present(quality: Mapping[str, Any] | None) -> float:
    """Fraction of the window's frames with a face (0 without video or face quality)."""
    face = (quality or {}).get("face") or {}
    return _finite(face.get("present")) or 0.0


def audio_present(quality: Mapping[str, Any] | None) -> bool:
    """Whether the window had audio; True when quality does not say (the values decide)."""
    audio = (quality or {}).get("audio")
    if not isinstance(audio, Mapping) or "present" not in audio:
        return True
    return bool(audio.get("present"))


def gate_inputs(
    inputs: Mapping[str, float | None], quality: Mapping[str, Any] | None
) -> tuple[dict[str, float], dict[str, str]]:
    """Splits inputs into usable values and excluded name -> reason, by the quality gate."""
    face = face_present(quality)
    audio = audio_present(quality)
    usable: dict[str, float] = {}
    excluded: dict[str, str] = {}
    for name in INPUTS:
        value = _finite(inputs.get(name))
        if name in FACE_INPUTS and face < MIN_FACE_PRESENT:
            excluded[name] = f"no face for {round(100 * (1 - face))}% of the window"
        elif name in VOICE_INPUTS and not audio:
            excluded[name] = "no audio in the window"
        elif value is None:
            excluded[name] = "not measured in this window"
        else:
            usable[name] = value
    return usable, excluded


def _enough(names: Iterable[str]) -> bool:
    names = list(names)
    return len(names) >= MIN_INPUTS and any(n in PHYSIOLOGICAL for n in names)


def _too_few(n: int) -> str:
    return (f"inconclusive: too few signals ({n} of {len(INPUTS)}; "
            f"need {MIN_INPUTS} incl. one physiological)")


def score(
    inputs: Mapping[str, float | None],
    quality: Mapping[str, Any] | None,
    baseline: Baseline,
) -> StressResult:
    """Scores one window's inputs against ``baseline`` through the quality gate."""
    usable, excluded = gate_inputs(inputs, quality)
    signed: dict[str, float] = {}
    no_baseline: list[str] = []
    for name, value in usable.items():
        z = baseline.z(name, value)
        if z is None:
            no_baseline.append(name)
            excluded[name] = (f"baseline not ready ({baseline.count(name)} of "
                              f"{baseline.min_samples} valid windows)")
        else:
            signed[name] = float(np.clip(SIGNS[name] * z, -Z_CLIP, Z_CLIP))

    if not _enough(signed):
        face = face_present(quality)
        if face < MIN_FACE_PRESENT and _enough(
            [n for n in INPUTS if n in FACE_INPUTS or n in signed]
        ):
            reason = f"inconclusive: no face for {round(100 * (1 - face))}% of the window"
        elif no_baseline and _enough(list(signed) + no_baseline):
            reason = f"inconclusive: baseline not ready for {', '.join(no_baseline)}"
        else:
            reason = _too_few(len(signed))
        return StressResult(None, reason, {}, sorted(signed, key=INPUTS.index), excluded)

    total = sum(WEIGHTS[name] for name in signed)
    contributions = {name: WEIGHTS[name] / total * z + 0.0 for name, z in signed.items()}
    combined = float(sum(contributions.values()))
    used = [name for name in INPUTS if name in signed]
    return StressResult(
        logistic_map(combined),
        None,
        {name: contributions[name] for name in used},
        used,
        excluded,
        {name: signed[name] for name in used},
    )


class StressIndex:
    """Streaming index for one stream.

    Without a ready ``baseline`` (e.g. a stored per-person one), the first ``baseline_s`` of
    capture time feed a session baseline and return "baseline not ready"; afterwards windows
    are scored. With ``adapt=False`` (default) the baseline is then frozen, so a trend over
    the session shows; with ``adapt=True`` every window that passes the gate keeps feeding it
    (bounded by ``max_samples``), which tracks slow drift but also absorbs sustained stress.
    Only windows that pass the quality gate feed the baseline.
    """

    def __init__(
        self,
        baseline: Baseline | None = None,
        baseline_s: float = BASELINE_S,
        adapt: bool = False,
    ) -> None:
        self.baseline = baseline if baseline is not None else Baseline()
        self.baseline_s = float(baseline_s)
        self.adapt = adapt
        self._preloaded = self.baseline.ready
        self._t0: float | None = None

    def collecting(self, t_end_s: float) -> bool:
        """Whether the window ending at ``t_end_s`` still belongs to the baseline period."""
        if self._preloaded:
            return False
        if self._t0 is None:
            self._t0 = t_end_s
        return t_end_s - self._t0 < self.baseline_s

    def update(
        self,
        window_signals: Mapping[str, Any] | None,
        emotions: Mapping[str, Any] | None,
        quality: Mapping[str, Any] | None,
        t_end_s: float,
    ) -> StressResult:
        """Feeds or scores one window (capture time ``t_end_s``, seconds)."""
        t = _finite(t_end_s)
        inputs = extract_inputs(window_signals, emotions)
        usable, excluded = gate_inputs(inputs, quality)
        if t is None:
            return StressResult(None, "inconclusive: window has no valid time", {}, [], excluded)
        if self.collecting(t):
            self.baseline.add(usable)
            elapsed = max(0.0, t - (self._t0 or t))
            reason = (f"inconclusive: baseline not ready "
                      f"({elapsed:.0f} s of {self.baseline_s:.0f} s)")
            return StressResult(None, reason, {}, [], excluded)
        result = score(inputs, quality, self.baseline)
        if self.adapt:
            self.baseline.add(usable)
        return result
