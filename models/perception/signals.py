"""Simple measurements that need no model: what the backbone reports before perception.

Per frame: brightness (mean luma, 0–1) and motion energy (mean absolute luma
change since the previous frame, 0–1, on a small thumbnail so that sensor
noise and scale do not dominate). Per audio chunk: the sum of squares (so that
a window's RMS level is exact, not an average of averages) and how many
samples are clipped. Voice activity and prosody come from models.perception.voice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

THUMB_SIZE = (80, 60)
FULL_SCALE = 32768.0


@dataclass(frozen=True)
class FrameMeasures:
    brightness: float
    motion: float | None
    thumbnail: np.ndarray


def measure_frame(image: np.ndarray, previous_thumbnail: np.ndarray | None) -> FrameMeasures:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    thumb = cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    motion = None
    if previous_thumbnail is not None:
        motion = float(np.mean(np.abs(thumb - previous_thumbnail)) / 255.0)
    return FrameMeasures(float(grey.mean() / 255.0), motion, thumb)


@dataclass(frozen=True)
class ChunkMeasures:
    sum_squares: float
    n_samples: int
    clipped: int


def measure_chunk(samples: np.ndarray) -> ChunkMeasures:
    x = samples.astype(np.float64) / FULL_SCALE
    clipped = int(np.sum(np.abs(samples.astype(np.int32)) >= 32767))
    return ChunkMeasures(float(np.sum(x * x)), len(x), clipped)


def level_db(sum_squares: float, n_samples: int) -> float | None:
    """RMS level in dBFS, floored at -120 (digital silence)."""
    if n_samples == 0:
        return None
    rms = math.sqrt(sum_squares / n_samples)
    return max(-120.0, 20 * math.log10(rms)) if rms > 0 else -120.0
