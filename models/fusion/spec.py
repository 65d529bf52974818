"""The fusion model's contract: input and output tensors, feature layout, expert constants.

Shared by the PyTorch definition (training, export), the numpy feature builder (live,
replay and training all build inputs with it) and the onnxruntime server, so that the three
cannot drift apart. It does not import torch, so that run time does not need it.

A window of ``window_s`` seconds is split into ``STEPS`` equal steps (0.5 s each for the
default 4 s window); every modality is a sequence over those steps with its own validity
mask, so GAAM and attention see the same time axis in all modalities and a step that one
modality misses (no face, silence) is simply masked.
"""

from __future__ import annotations

from wellmon.models.perception.face import EMOTIONS
from wellmon.models.stress.index import INPUTS as STRESS_INPUTS
from wellmon.models.stress.index import LOGISTIC_SLOPE, WEIGHTS

STEPS = 8
"""Steps per window; the exported graph accepts any number, the node uses this one."""

VISUAL_FEATURES: tuple[str, ...] = (
    *(f"p_{e}" for e in EMOTIONS),
    "face_weight",
    "face_fraction",
    "eye_openness",
    "blinks",
    "yaw",
    "pitch",
    "roll",
    "mouth_open",
    "brow_lowering",
    "motion",
    "brightness",
)
"""Per step. ``p_*`` is the expression distribution averaged over the step's face frames,
weighted by detection confidence; ``face_weight`` is the sum of those confidences divided by
``FACE_WEIGHT_SCALE``, so that the expert prior can weight steps as the per-frame average
does. A step is valid when it has at least one frame with a face."""

AUDIO_FEATURES: tuple[str, ...] = (
    "voice_activity",
    "voiced",
    "f0",
    "energy",
)
"""Per step, from the voice analyser's 10 ms frames. A step is valid when audio was analysed
in it; ``f0`` is 0 in a step without voiced frames (``voiced`` says so)."""

TEXT_FEATURES: tuple[str, ...] = (
    "sentiment",
    "words",
)
"""Per step: VADER sentiment of the final utterances that overlap the step and their word rate.
A step is valid when a final utterance overlaps it."""

PHYSIO_FEATURES: tuple[str, ...] = (
    "heart_rate",
    "has_heart_rate",
    "hrv_rmssd",
    "has_hrv",
    "pulse_snr",
    "blink_rate",
    "has_blink_rate",
)
"""One vector per window (rPPG needs 10 s or more, so it has no per-step resolution). Valid
when heart rate or blink rate is measured; a missing value is 0 with its ``has_`` flag 0."""

NORMALISATION: dict[str, tuple[float, float]] = {
    "eye_openness": (0.28, 0.08),
    "yaw": (0.0, 30.0),
    "pitch": (0.0, 30.0),
    "roll": (0.0, 30.0),
    "mouth_open": (0.0, 0.3),
    "brow_lowering": (0.0, 0.1),
    "motion": (0.0, 0.05),
    "brightness": (0.5, 0.25),
    "blinks": (0.0, 1.0),
    "f0": (150.0, 60.0),
    "energy": (-40.0, 20.0),
    "heart_rate": (70.0, 15.0),
    "hrv_rmssd": (40.0, 25.0),
    "pulse_snr": (5.0, 5.0),
    "blink_rate": (15.0, 10.0),
    "words": (0.0, 3.0),
}
"""(centre, scale): a feature enters as (value - centre) / scale, so that every input is
of order one. Rough population figures (adult resting heart rate, speaking pitch, blink
rate), not fitted; training learns the rest."""

FACE_WEIGHT_SCALE = 8.0
"""Divides a step's summed face confidence (a 0.5 s step has up to ~8 frames at 15 fps)."""

MODALITIES: tuple[str, ...] = ("visual", "audio", "text", "physio")
SEQUENCE_MODALITIES: tuple[str, ...] = ("visual", "audio", "text")
FEATURES: dict[str, tuple[str, ...]] = {
    "visual": VISUAL_FEATURES, "audio": AUDIO_FEATURES, "text": TEXT_FEATURES,
    "physio": PHYSIO_FEATURES,
}

DIM = 32
"""Width of every modality's representation and of the temporal context."""
CONTEXT_WINDOWS = 8
"""K: past windows in the causal context graph (4 s of hops at the default 0.5 s)."""

INPUT_NAMES: tuple[str, ...] = (
    "visual", "visual_mask", "audio", "audio_mask", "text", "text_mask",
    "physio", "physio_mask", "stress_z", "stress_mask", "context", "context_mask",
)
INPUT_RANKS: dict[str, int] = {
    "visual": 3, "visual_mask": 2, "audio": 3, "audio_mask": 2, "text": 3, "text_mask": 2,
    "physio": 2, "physio_mask": 1, "stress_z": 2, "stress_mask": 2, "context": 3,
    "context_mask": 2,
}
OUTPUT_NAMES: tuple[str, ...] = (
    "emotion", "valence", "arousal", "stress", "stress_contributions", "modality_gates",
    "step_attention", "gaam_weights", "next_context", "next_context_mask",
)

# ----------------------------------------------------------------- the documented expert fusion

STRESS_LOG_WEIGHTS: tuple[float, ...] = tuple(WEIGHTS[name] for name in STRESS_INPUTS)
"""The stress head starts at models/stress/index.py: weights renormalised over the inputs present
(a masked softmax over log weights), times signed clipped z, logistic with ``LOGISTIC_SLOPE``."""
STRESS_SLOPE = LOGISTIC_SLOPE

EMOTION_VALENCE: dict[str, float] = {
    "angry": -0.51, "disgust": -0.60, "fear": -0.64, "happy": 0.81, "sad": -0.63,
    "surprise": 0.40, "neutral": 0.0,
}
EMOTION_AROUSAL: dict[str, float] = {
    "angry": 0.59, "disgust": 0.35, "fear": 0.60, "happy": 0.51, "sad": -0.27,
    "surprise": 0.67, "neutral": 0.0,
}
"""Pleasure and arousal coordinates of the expression classes, after Russell & Mehrabian's
(1977) PAD ratings of emotion terms (rounded; neutral at the origin). The expert valence and
arousal of a window are the expression distribution's expectation of these."""

FACE_VALENCE_WEIGHT = 0.7
TEXT_VALENCE_WEIGHT = 0.3
"""Valence mixes the face's expectation and the mean text sentiment, renormalised over the
two that are present: the face is there most of the time, words only when someone speaks,
and VADER on recognised (unpunctuated, error-prone) speech is the weaker of the two."""

EXPERT_DEFAULTS = "expert"
"""``wellmon.kind`` metadata of the shipped default file; a trained model says ``trained``."""

__all__ = ["EMOTIONS", "STRESS_INPUTS"]
