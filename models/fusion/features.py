"""One window's fusion inputs, built from what perception measured (numpy, no torch).

Live, replay and ``wellmon train`` all build a window's ``FusionInput`` in
``StreamPerception.fusion_input()`` (models/perception/pipeline.py) from the functions here
(``visual_steps``, ``audio_steps``, ``text_steps``, ``physio_vector``, ``stress_vector``), so
a model is trained on exactly the features it is served.
Layouts, normalisation and masks are defined in spec.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wellmon.models.fusion import spec
from wellmon.models.perception.behaviour import FrameBehaviour
from wellmon.models.perception.records import FrameRecord, HeardUtterance
from wellmon.models.stress.index import StressResult
from wellmon.streamer.wire.protocol import NS

N_EMOTIONS = len(spec.EMOTIONS)
_V = {name: i for i, name in enumerate(spec.VISUAL_FEATURES)}
_A = {name: i for i, name in enumerate(spec.AUDIO_FEATURES)}
_P = {name: i for i, name in enumerate(spec.PHYSIO_FEATURES)}


@dataclass
class FusionInput:
    """The fusion model's inputs for one window (no batch axis; see spec.INPUT_NAMES)."""

    visual: np.ndarray
    visual_mask: np.ndarray
    audio: np.ndarray
    audio_mask: np.ndarray
    text: np.ndarray
    text_mask: np.ndarray
    physio: np.ndarray
    physio_mask: np.ndarray
    stress_z: np.ndarray
    stress_mask: np.ndarray

    @property
    def present(self) -> dict[str, bool]:
        """Which modalities have at least one valid step (or, for physio, a value)."""
        return {"visual": bool(self.visual_mask.any()), "audio": bool(self.audio_mask.any()),
                "text": bool(self.text_mask.any()), "physio": bool(self.physio_mask)}


def _norm(name: str, value: float | None) -> float:
    if value is None or not np.isfinite(value):
        return 0.0
    centre, scale = spec.NORMALISATION[name]
    return float((value - centre) / scale)


def _step_of(t_s: float, start_s: float, end_s: float, steps: int) -> int:
    return min(steps - 1, max(0, int((t_s - start_s) * steps / (end_s - start_s))))


def visual_steps(frames: Sequence[tuple[float, FrameRecord]],
                 behaviour: Sequence[FrameBehaviour], blink_times_s: Iterable[float],
                 start_s: float, end_s: float, steps: int = spec.STEPS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``[steps, len(VISUAL_FEATURES)]`` and the mask, from (capture time in s, record) and
    the blink and head tracker's frames (`BehaviourWindow.frames`), all in the window."""
    out = np.zeros((steps, len(spec.VISUAL_FEATURES)), np.float32)
    by_step: list[list[FrameRecord]] = [[] for _ in range(steps)]
    for t_s, record in frames:
        by_step[_step_of(t_s, start_s, end_s, steps)].append(record)
    seen_by_step: list[list[FrameBehaviour]] = [[] for _ in range(steps)]
    for seen in behaviour:
        if seen.face:
            seen_by_step[_step_of(seen.t_s, start_s, end_s, steps)].append(seen)
    for t_s in blink_times_s:
        if start_s <= t_s < end_s:
            out[_step_of(t_s, start_s, end_s, steps), _V["blinks"]] += 1.0
    mask = np.zeros(steps, bool)
    for i, records in enumerate(by_step):
        if records:
            out[i, _V["brightness"]] = _norm("brightness",
                                             np.mean([r.brightness for r in records]))
            motion = [r.motion for r in records if r.motion is not None]
            out[i, _V["motion"]] = _norm("motion", np.mean(motion) if motion else None)
        faces = [r for r in records if r.face]
        if not faces:
            continue
        mask[i] = True
        conf = np.array([r.face_confidence for r in faces], np.float64)
        out[i, :N_EMOTIONS] = np.average(np.array([r.expression for r in faces]), axis=0,
                                         weights=conf)
        out[i, _V["face_weight"]] = conf.sum() / spec.FACE_WEIGHT_SCALE
        out[i, _V["face_fraction"]] = len(faces) / len(records)
        for feature, key in (("eye_openness", "ear"), ("yaw", "yaw_deg"),
                             ("pitch", "pitch_deg"), ("roll", "roll_deg"),
                             ("mouth_open", "mouth_open"), ("brow_lowering", "brow_lowering")):
            values = [v for b in seen_by_step[i] if (v := getattr(b, key)) is not None]
            out[i, _V[feature]] = _norm(feature, float(np.mean(values)) if values else None)
    out[:, _V["blinks"]] = np.where(mask, out[:, _V["blinks"]], 0.0)
    return out, mask


def audio_steps(per_step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From ``VoiceAnalyzer.steps()`` rows [frames, speech, voiced, F0, energy dB]."""
    frames = per_step[:, 0]
    mask = frames > 0
    out = np.zeros((len(per_step), len(spec.AUDIO_FEATURES)), np.float32)
    safe = np.maximum(frames, 1)
    out[:, _A["voice_activity"]] = per_step[:, 1] / safe
    out[:, _A["voiced"]] = per_step[:, 2] / safe
    out[:, _A["f0"]] = [_norm("f0", f) if v else 0.0 for f, v in zip(per_step[:, 3],
                                                                    per_step[:, 2])]
    out[:, _A["energy"]] = [_norm("energy", e) for e in per_step[:, 4]]
    out[~mask] = 0.0
    return out, mask


def text_steps(utterances: Iterable[HeardUtterance], start_s: float, end_s: float,
               steps: int = spec.STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Finished utterances with a sentiment over the steps (window bounds in s)."""
    out = np.zeros((steps, len(spec.TEXT_FEATURES)), np.float32)
    sentiments: list[list[float]] = [[] for _ in range(steps)]
    step_s = (end_s - start_s) / steps
    for u in utterances:
        if not u.final or u.sentiment is None:
            continue
        t0, t1 = u.t_start_ns / NS, u.t_end_ns / NS
        rate = len(u.text.split()) / max(t1 - t0, 0.1)
        for i in range(steps):
            a, b = start_s + i * step_s, start_s + (i + 1) * step_s
            if t0 < b and t1 > a:
                sentiments[i].append(u.sentiment)
                out[i, 1] = max(out[i, 1], _norm("words", rate))
    mask = np.array([bool(s) for s in sentiments])
    out[:, 0] = [float(np.mean(s)) if s else 0.0 for s in sentiments]
    return out, mask


def physio_vector(signals: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Heart rate, HRV, pulse SNR and blink rate with presence flags; valid if any is there."""
    out = np.zeros(len(spec.PHYSIO_FEATURES), np.float32)
    hr, hrv, rate = (signals.get(k) for k in ("heart_rate", "hrv_rmssd", "blink_rate"))
    if hr is not None:
        out[_P["heart_rate"]] = _norm("heart_rate", hr)
        out[_P["has_heart_rate"]] = 1.0
        out[_P["pulse_snr"]] = _norm("pulse_snr", signals.get("pulse_snr_db"))
    if hrv is not None:
        out[_P["hrv_rmssd"]] = _norm("hrv_rmssd", hrv)
        out[_P["has_hrv"]] = 1.0
    if rate is not None:
        out[_P["blink_rate"]] = _norm("blink_rate", rate)
        out[_P["has_blink_rate"]] = 1.0
    return out, np.array(hr is not None or rate is not None)


def stress_vector(result: StressResult) -> tuple[np.ndarray, np.ndarray]:
    """Signed clipped z-scores of the inputs the quality gate and baseline let through."""
    z = np.array([result.signed_z.get(name, 0.0) for name in spec.STRESS_INPUTS], np.float32)
    mask = np.array([name in result.signed_z for name in spec.STRESS_INPUTS])
    return z, mask


def no_stress() -> tuple[np.ndarray, np.ndarray]:
    """Stress input of a window the quality gate or the baseline turned away."""
    n = len(spec.STRESS_INPUTS)
    return np.zeros(n, np.float32), np.zeros(n, bool)


def stress_input(result: StressResult) -> tuple[np.ndarray, np.ndarray]:
    """A window's stress input: its z-scores when the index gave a value, else none."""
    return stress_vector(result) if result.value is not None else no_stress()


def stack(inputs: Sequence[FusionInput], contexts: Sequence[tuple[np.ndarray, np.ndarray]]
          ) -> dict[str, np.ndarray]:
    """A batch for onnxruntime (or torch) from windows and their streams' contexts."""
    batch = {name: np.stack([getattr(x, name) for x in inputs])
             for name in spec.INPUT_NAMES if not name.startswith("context")}
    batch["context"] = np.stack([c for c, _ in contexts]).astype(np.float32)
    batch["context_mask"] = np.stack([m for _, m in contexts]).astype(bool)
    return batch


def empty_context(dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS
                  ) -> tuple[np.ndarray, np.ndarray]:
    """No past windows yet."""
    return np.zeros((k_past, dim), np.float32), np.zeros(k_past, bool)


def random_window(rng: np.random.Generator) -> FusionInput:
    """A plausible window for benchmarks: random features, a few steps and modalities
    missing, as live windows have."""
    def steps(names: tuple[str, ...], p_valid: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((spec.STEPS, len(names))).astype(np.float32)
        return x, rng.random(spec.STEPS) < p_valid

    visual, visual_mask = steps(spec.VISUAL_FEATURES, 0.9)
    visual[:, :N_EMOTIONS] = rng.dirichlet(np.ones(N_EMOTIONS), spec.STEPS)
    visual[:, _V["face_weight"]] = rng.random(spec.STEPS)
    audio, audio_mask = steps(spec.AUDIO_FEATURES, 0.8)
    text, text_mask = steps(spec.TEXT_FEATURES, 0.3)
    physio = rng.standard_normal(len(spec.PHYSIO_FEATURES)).astype(np.float32)
    n = len(spec.STRESS_INPUTS)
    return FusionInput(visual, visual_mask, audio, audio_mask, text, text_mask, physio,
                       np.array(True), rng.uniform(-3, 3, n).astype(np.float32),
                       rng.random(n) < 0.7)
