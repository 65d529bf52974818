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

Over time (``StressIndex``), so that a steady person reads steady:

* Pitch and jitter are pooled over the voiced speech of the last ``VOICE_POOL_S`` seconds of
  windows (each window's value weighted by its seconds of voiced speech), both for the
  baseline and afterwards: a 4 s window holds anything from no voiced speech to a whole
  sentence, and one sentence's intonation moved the per-window mean pitch of the sample clip
  between 86 and 108 Hz (SD 6 Hz), the largest source of jumps. Heart rate already comes from
  its own 20 s of pulse (``perception.pulse_window_s``), blink rate from the last minute.
* Each input's signed, clipped z is smoothed exponentially with time constant ``SMOOTH_TAU_S``
  (weight ``1 - exp(-dt / tau)`` for a window ``dt`` seconds after the last, so the hop does
  not change the time scale). The index and its drivers are computed from the smoothed z, so
  the drivers still add up to the combined z that the logistic maps.
* An input missing from a window (not measured, e.g. a pulse below its SNR threshold) keeps
  its smoothed value for ``HOLD_S``, so that the weights are not renormalised back and forth
  every time it blinks out; an input the quality gate turns away (no face, no audio) is
  dropped at once.
* ``band`` is the index at the combined z +- one standard error (``z_se``); the standard
  error comes from each input's recent spread around its smoothed value, reduced by how many
  independent measurements the smoothing averages (``MEASUREMENT_SPAN_S``). When the band is
  wider than ``MAX_BAND`` points the value is None, "inconclusive: uncertain".
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
    "jitter": 0.3,
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
* jitter 0.3 percentage points: the per-window spread of local jitter measured on the looped
  sample clip, i.e. the same utterances again (SD 0.28); the earlier 0.1 was below the
  measurement's own noise, and pooled jitter then wandered by a whole "scale" while nothing
  changed.
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

SMOOTH_TAU_S = 6.0
"""Time constant (s) of the exponential smoothing of each input's z (``StressIndex``).

Measured on the sample clip looped (a steady person) before any of this: consecutive windows
0.5 s apart differed by up to 29 points, 8 at the 90th percentile. The change that must still
show (heart rate +15 bpm, pitch +10 %) has to pass 70 within 15 s and fall back under 60
within 30 s of its end, of which the pulse estimator (its 20 s window shows a step about
10 s late) and the voice pool take most. On generated input (tests/unit/test_stress.py) 6 s
keeps 90 % of steps under 2 points with a wide margin and meets both response times (at
most 14 s up, 27 s down over 16 seeds; medians 12.5 and 21 s); what is left of the steady
spread (SD 1.0-3.7 points over 32 generated persons, above 3 in one) is the inputs' slow
wander, which a longer tau barely reduces and the 15 s allowed to rise leaves no room for."""
HOLD_S = 10.0
"""An input that was not measured in a window keeps its smoothed z this long (s)."""
VOICE_POOL_S = 15.0
"""Pitch and jitter are pooled over the windows that ended in the last 15 s, i.e. over the
voiced speech of the last ``VOICE_POOL_S + WINDOW_S`` = 19 s of audio: two or three sentences
of conversational speech, so that one sentence's intonation does not move the index."""
MIN_POOLED_VOICED_S = 1.0
"""Pooled pitch and jitter need this much voiced speech (s) in the pool, else None."""
WINDOW_S = 4.0
"""The node's window (``node.window_s``); windows overlap, so the sum of their voiced seconds
counts each second of voiced speech ``WINDOW_S / hop`` times."""
MEASUREMENT_SPAN_S: dict[str, float] = {
    "heart_rate": 20.0,
    "hrv_rmssd": 30.0,
    "blink_rate": 60.0,
    "f0_mean": VOICE_POOL_S + WINDOW_S,
    "jitter": VOICE_POOL_S + WINDOW_S,
    "negative_affect": WINDOW_S,
}
"""Seconds of data behind one value of each input (``perception.pulse_window_s``, the HRV
window of ``PulseEstimator``, the blink
minute, the voice pool, one window): consecutive windows share most of it, so smoothing over
``tau`` averages about ``2 tau / span`` independent measurements, not ``2 tau / hop``."""
VAR_TAU_S = 10.0
"""Time constant (s) of each input's running spread around its smoothed value (the band)."""
MAX_BAND = 40.0
"""A band (index at combined z -+ one standard error) wider than this many points reads
"inconclusive: uncertain" rather than a number that could be almost anything."""


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
    spread: float = 0.0
    """Unfloored 1.4826 x MAD: how much the signal varied during the baseline."""


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
                self._cache[name] = SignalStats(median, scale, len(x), MAD_TO_SD * mad)
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
    ``signed_z`` is each used input's signed, clipped z: the fusion model's stress input
    (from ``StressIndex``: smoothed over time, see the module doc; ``raw_z`` holds this
    window's own). ``band`` is the index at the combined z -+ ``z_se`` (None from ``score``,
    which sees one window and cannot tell its noise).
    """

    value: float | None
    reason: str | None
    contributions: dict[str, float] = field(default_factory=dict)
    inputs_used: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    signed_z: dict[str, float] = field(default_factory=dict)
    band: tuple[float, float] | None = None
    z_se: float | None = None
    raw_z: dict[str, float] = field(default_factory=dict)


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


def signed_scores(
    usable: Mapping[str, float], baseline: Baseline, excluded: dict[str, str]
) -> tuple[dict[str, float], list[str]]:
    """Signed, clipped z of each usable input with a ready baseline, and those without one
    (which are added to ``excluded`` with the reason)."""
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
    return signed, no_baseline


def _not_enough_reason(signed: Iterable[str], no_baseline: list[str],
                       quality: Mapping[str, Any] | None) -> str:
    signed = list(signed)
    face = face_present(quality)
    if face < MIN_FACE_PRESENT and _enough(
        [n for n in INPUTS if n in FACE_INPUTS or n in signed]
    ):
        return f"inconclusive: no face for {round(100 * (1 - face))}% of the window"
    if no_baseline and _enough(signed + no_baseline):
        return f"inconclusive: baseline not ready for {', '.join(no_baseline)}"
    return _too_few(len(signed))


def combine(signed: Mapping[str, float]) -> tuple[float, dict[str, float], list[str]]:
    """Combined z, each input's share of it (renormalised weight x z) and the inputs in order."""
    used = [name for name in INPUTS if name in signed]
    total = sum(WEIGHTS[name] for name in used)
    contributions = {name: WEIGHTS[name] / total * signed[name] + 0.0 for name in used}
    return float(sum(contributions.values())), contributions, used


def index_of(
    inputs: Mapping[str, float | None],
    quality: Mapping[str, Any] | None,
    baseline: Baseline,
) -> StressResult:
    """Scores one window's inputs against ``baseline`` through the quality gate."""
    usable, excluded = gate_inputs(inputs, quality)
    signed, no_baseline = signed_scores(usable, baseline, excluded)
    if not _enough(signed):
        return StressResult(None, _not_enough_reason(signed, no_baseline, quality), {},
                            sorted(signed, key=INPUTS.index), excluded)
    combined, contributions, used = combine(signed)
    return StressResult(
        logistic_map(combined),
        None,
        contributions,
        used,
        excluded,
        {name: signed[name] for name in used},
        raw_z={name: signed[name] for name in used},
    )


@dataclass
class _Track:
    """One input's smoothed signed z, its running variance and when it was last measured."""

    z: float
    var: float
    t_measured: float
    t_updated: float


class StressIndex:
    """Streaming index for one stream.

    Without a ready ``baseline`` (e.g. a stored per-person one), the first ``baseline_s`` of
    capture time feed a session baseline and return "baseline not ready"; afterwards windows
    are scored. With ``adapt=False`` (default) the baseline is then frozen, so a trend over
    the session shows; with ``adapt=True`` every window that passes the gate keeps feeding it
    (bounded by ``max_samples``), which tracks slow drift but also absorbs sustained stress.
    Only windows that pass the quality gate feed the baseline.

    ``smooth_s`` (``SMOOTH_TAU_S``) and ``voice_pool_s`` (``VOICE_POOL_S``) are the time
    scales of the module doc; 0 turns either off (``smooth_s=0``: each window on its own, no
    holding of missing inputs either).
    """

    def __init__(
        self,
        baseline: Baseline | None = None,
        baseline_s: float = BASELINE_S,
        adapt: bool = False,
        smooth_s: float = SMOOTH_TAU_S,
        voice_pool_s: float = VOICE_POOL_S,
    ) -> None:
        self.baseline = baseline if baseline is not None else Baseline()
        self.baseline_s = float(baseline_s)
        self.adapt = adapt
        self.smooth_s = max(0.0, float(smooth_s))
        self.voice_pool_s = max(0.0, float(voice_pool_s))
        self._preloaded = self.baseline.ready
        self._t0: float | None = None
        self._hop = 0.5
        self._t_last: float | None = None
        self._voice: deque[tuple[float, float, float | None, float | None]] = deque()
        self._tracks: dict[str, _Track] = {}

    def collecting(self, t_end_s: float) -> bool:
        """Whether the window ending at ``t_end_s`` still belongs to the baseline period."""
        if self._preloaded:
            return False
        if self._t0 is None:
            self._t0 = t_end_s
        return t_end_s - self._t0 < self.baseline_s

    def _pool_voice(self, inputs: dict[str, float | None], signals: Mapping[str, Any],
                    quality: Mapping[str, Any] | None, t: float) -> str | None:
        """Replaces this window's pitch and jitter with their pools (module doc); returns why
        the pool has no pitch, or None."""
        if self.voice_pool_s <= 0:
            return None
        f0, jitter = inputs.get("f0_mean"), inputs.get("jitter")
        voiced = _finite(signals.get("voiced_s"))
        weight = voiced if voiced is not None else (1.0 if f0 is not None else 0.0)
        if audio_present(quality) and weight > 0 and (f0 is not None or jitter is not None):
            self._voice.append((t, weight, f0, jitter))
        while self._voice and self._voice[0][0] <= t - self.voice_pool_s:
            self._voice.popleft()
        count = self._hop / WINDOW_S  # each voiced second is in WINDOW_S / hop windows
        why = None
        for name, k in (("f0_mean", 2), ("jitter", 3)):
            entries = [(e[1], e[k]) for e in self._voice if e[k] is not None]
            voiced_s = sum(w for w, _ in entries) * count
            if voiced_s >= MIN_POOLED_VOICED_S:
                inputs[name] = sum(w * x for w, x in entries) / sum(w for w, _ in entries)
            else:
                inputs[name] = None
                if name == "f0_mean":
                    why = (f"too little voiced speech in the last "
                           f"{self.voice_pool_s + WINDOW_S:g} s ({voiced_s:.1f} s < "
                           f"{MIN_POOLED_VOICED_S:g} s)")
        return why

    def _smooth(self, signed: Mapping[str, float], gated: Iterable[str], t: float) -> None:
        """Moves each input's track toward this window's z; drops gated and stale tracks."""
        for name in gated:
            self._tracks.pop(name, None)
        for name, z in signed.items():
            track = self._tracks.get(name)
            if track is None:
                stats = self.baseline.stats(name)
                spread = stats.spread / stats.scale if stats is not None else 1.0
                self._tracks[name] = _Track(z, spread * spread, t, t)
                continue
            dt = max(0.0, t - track.t_updated)
            a = 1.0 - math.exp(-dt / self.smooth_s) if self.smooth_s > 0 else 1.0
            a_var = 1.0 - math.exp(-dt / VAR_TAU_S)
            d = z - track.z
            track.var = (1.0 - a_var) * (track.var + a_var * d * d)
            track.z += a * d
            track.t_measured = track.t_updated = t
        for name in list(self._tracks):
            if (t - self._tracks[name].t_measured > HOLD_S
                    or (self.smooth_s <= 0 and name not in signed)):
                del self._tracks[name]

    def _se2(self, name: str, track: _Track, t: float) -> float:
        """Squared standard error of an input's smoothed z (module doc)."""
        if self.smooth_s <= 0 or track.t_measured < t:
            return track.var
        a = 1.0 - math.exp(-self._hop / self.smooth_s)
        k = max(a / (2.0 - a), MEASUREMENT_SPAN_S[name] / (2.0 * self.smooth_s))
        return track.var * min(1.0, k)

    def update(
        self,
        window_signals: Mapping[str, Any] | None,
        emotions: Mapping[str, Any] | None,
        quality: Mapping[str, Any] | None,
        t_end_s: float,
    ) -> StressResult:
        """Feeds or scores one window (capture time ``t_end_s``, seconds)."""
        t = _finite(t_end_s)
        signals = window_signals or {}
        inputs = extract_inputs(signals, emotions)
        if t is None:
            _, excluded = gate_inputs(inputs, quality)
            return StressResult(None, "inconclusive: window has no valid time", {}, [], excluded)
        if self._t_last is not None and 0 < t - self._t_last <= WINDOW_S:
            self._hop = t - self._t_last
        self._t_last = t
        no_pitch = self._pool_voice(inputs, signals, quality, t)
        usable, excluded = gate_inputs(inputs, quality)
        if no_pitch and excluded.get("f0_mean") == "not measured in this window":
            excluded["f0_mean"] = no_pitch
        if self.collecting(t):
            self.baseline.add(usable)
            elapsed = max(0.0, t - (self._t0 or t))
            reason = (f"inconclusive: baseline not ready "
                      f"({elapsed:.0f} s of {self.baseline_s:.0f} s)")
            return StressResult(None, reason, {}, [], excluded)
        signed, no_baseline = signed_scores(usable, self.baseline, excluded)
        if self.adapt:
            self.baseline.add(usable)
        gated = [n for n, why in excluded.items() if why.startswith(("no face", "no audio"))]
        self._smooth(signed, gated, t)
        held = [n for n in self._tracks if n not in signed]
        for name in held:
            excluded.pop(name, None)
        tracks = {n: self._tracks[n] for n in INPUTS if n in self._tracks}
        smoothed = {n: tr.z for n, tr in tracks.items()}
        raw = {n: signed[n] for n in INPUTS if n in signed}
        if not _enough(smoothed):
            return StressResult(None, _not_enough_reason(smoothed, no_baseline, quality), {},
                                list(smoothed), excluded, raw_z=raw)
        combined, contributions, used = combine(smoothed)
        total = sum(WEIGHTS[n] for n in used)
        se = math.sqrt(sum((WEIGHTS[n] / total) ** 2 * self._se2(n, tracks[n], t)
                           for n in used))
        band = (logistic_map(combined - se), logistic_map(combined + se))
        if band[1] - band[0] > MAX_BAND:
            reason = (f"inconclusive: uncertain (could be anywhere from {band[0]:.0f} to "
                      f"{band[1]:.0f}, wider than {MAX_BAND:g} points)")
            return StressResult(None, reason, {}, used, excluded, raw_z=raw)
        return StressResult(logistic_map(combined), None, contributions, used, excluded,
                            smoothed, band, se, raw)
