"""Synthetic audio-visual clips with exact, recoverable ground truth.

The later analysis stages (rPPG heart rate, blink detection, voice pitch, speech-to-text) need
test input whose truth is known to the millisecond, not just "a video of a face". This module
animates one still photograph (NASA's portrait of Eileen Collins, bundled as
``sample/astronaut.jpg``) into an H.264/AAC mp4 with:

* a blood-volume pulse on the skin pixels only (strongest in green, as in real skin), at a
  known heart rate and with known beat times;
* eye blinks at known times (eyelids painted over both eyes with a smooth close/open profile);
* espeak-ng speech at known start times, trimmed so the intervals are the audible extent;
* small smooth head motion, slow lighting drift and sensor noise, so that detectors are not
  tested on a perfectly static picture.

Beyond the bundled sample, a clip can vary the one face (all off by default; see ClipSpec):
skin tone (``SKIN_TONES``), eyelid texture (``EYELIDS``), glasses (``GLASSES``), face size and
width (``face_scale``, ``face_aspect``) and head motion up to 1.5 Hz (``motion_hz_max``).
``streamer.synthetic_matrix`` builds a balanced set of such clips for tuning and reporting.

``make_clip`` writes the mp4 and returns the ground truth as a JSON-serialisable dict.
``python -m wellmon.streamer.synthetic --sample`` rebuilds the bundled sample clip, its JSON and
``SAMPLE.md``; ``python -m wellmon.streamer.synthetic OUT.mp4 [options]`` makes ad-hoc clips.

Only numpy, OpenCV, PyAV and the espeak-ng executable are needed (no scikit-image at run time).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

GENERATOR_VERSION = "1.1.1"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
PHOTO_PATH = SAMPLE_DIR / "astronaut.jpg"
AUDIO_RATE = 48000
ESPEAK = "espeak-ng"

# --- Geometry of the photograph (512x512 source pixels), measured once by hand on a 12x zoom
# and cross-checked with OpenCV's Haar cascades. Hard-coded so the ground truth does not
# depend on the OpenCV version installed.
_FACE_BOX = (177.0, 66.0, 94.0, 94.0)  # x, y, w, h: haarcascade_frontalface_default hit
_FACE_ELLIPSE = ((225.0, 121.0), (40.0, 49.0))  # centre, semi-axes: the facial skin area
_EYES = (  # centre, semi-axes of the visible eye opening (viewer's left, then right)
    ((202.5, 100.5), (11.0, 4.5)),
    ((249.0, 103.5), (11.5, 4.5)),
)
_EYE_BOX_MARGIN = (3.0, 4.0)  # eye box = opening + this margin (x, y), so lids stay inside
_MOUTH = ((223.5, 145.5), (24.0, 10.5))  # lips and teeth: not pulsing skin
_SKIN_ROI = (190.0, 109.0, 70.0, 25.0)  # x, y, w, h: cheeks + nose, between eyes and mouth
_FACE_HEIGHT_FRACTION = 1.0 / 3.0  # face box height / frame height
_FACE_CENTRE_Y_FRACTION = 0.45  # where the face centre goes (fraction of frame height)

# Pulse: relative pulsatile amplitude per channel (R, G, B); green strongest, as in rPPG data.
_PULSE_RGB_WEIGHTS = (0.40, 1.00, 0.60)
_ROT_DEG_PER_PX = 0.1  # head rotation amplitude (degrees) per pixel of translation amplitude
_LIGHT_PERIOD_S = 30.0  # lighting drift period: well below the 0.7 Hz heart-rate band
_NOISE_PAD = 32  # extra rows/columns of the sensor-noise field (see make_clip)
_BLINK_CLOSE_FRACTION = 0.4  # closing takes 40 % of a blink, opening the remaining 60 %

_SAMPLE_SPEECH = (
    (2.0, "Hello, this is a test of the wellness monitor."),
    (9.0, "The quick brown fox jumps over the lazy dog."),
    (16.5, "Please take a deep breath and relax your shoulders."),
    (25.0, "I am feeling calm and focused today."),
    (32.0, "Thank you, the recording is now complete."),
)
_SAMPLE_BLINKS = (1.35, 5.8, 8.15, 13.4, 18.9, 22.05, 28.6, 34.25)

# --- Appearance variants (ClipSpec.skin_tone, .eyelid, .glasses).
# Skin tone = a change of skin albedo: each channel of the skin pixels is multiplied in linear
# light (sRGB decoded) by target / reference, where reference is the mean sRGB colour of the
# photograph's facial skin (measured once with _skin_mask) and target the mean the toned skin
# should have in the photograph's light. Shading and texture are kept (they scale with the
# albedo, as in a real darker or lighter skin); eye openings and teeth are left alone.
_SKIN_REFERENCE_RGB = (211.0, 177.4, 152.5)
SKIN_TONES: dict[str, tuple[tuple[float, float, float] | None, str]] = {
    "original": (None, "the photograph as it is: light skin (mean sRGB 211, 177, 153)"),
    "light": ((234.0, 207.0, 192.0), "paler, pinker skin (mean sRGB 234, 207, 192)"),
    "tan": ((196.0, 150.0, 116.0), "light brown / olive-tan skin (mean sRGB 196, 150, 116)"),
    "brown": ((146.0, 100.0, 72.0), "medium-dark brown skin (mean sRGB 146, 100, 72)"),
    "dark": ((86.0, 57.0, 44.0), "dark brown skin, luma about 64 instead of 184 (mean sRGB "
             "86, 57, 44): little light comes back, so the pulse is a larger fraction of a "
             "much smaller signal and sensor noise matters more (the hard case for rPPG)"),
    "ruddy": ((222.0, 158.0, 142.0), "flushed, red-dominant skin (mean sRGB 222, 158, 142): "
              "green and blue drop, red stays"),
}
EYELIDS: dict[str, str] = {
    "mirror": "the skin below the eye mirrored upwards, mean matched to the eye socket (1.0)",
    "smooth": "flat eye-socket skin colour with 15 % of the mirrored texture",
    "dark": "eye shadow: socket colour x (0.55, 0.47, 0.52), a mauve-brown, half the texture",
    "pale": "light lid (concealer / pale eye shadow): socket colour 30 % of the way to "
            "(240, 232, 228), half the texture",
}
GLASSES: dict[str | None, str] = {
    None: "no glasses",
    "thin": "thin dark-grey metal rims (1.3 source px, ~2 px in a 640x480 frame), oval "
            "lenses with a faint blue-grey tint (12 %), a thin bridge and temples, a glare "
            "patch on the upper outer part of each lens",
    "thick": "thick black acetate rims (3.5 source px, top bar 5 px), rectangular lenses "
             "with a brownish tint (18 %), a thick bridge and temples, a larger glare patch",
}
# Lenses in photograph coordinates: centre = eye centre + this offset, semi-axes, superellipse
# exponent (2 = ellipse, larger = squarer), rim width, top-bar width, tint (RGB), tint alpha,
# glare alpha, rim colour.
_GLASSES_STYLE: dict[str, dict[str, Any]] = {
    "thin": {"offset": (0.0, 2.0), "axes": (17.0, 11.5), "power": 2.4, "rim": 1.3,
             "top": 1.3, "tint": (95.0, 110.0, 125.0), "tint_alpha": 0.12,
             "glare_alpha": 0.55, "glare_axes": (5.5, 2.2), "colour": (52.0, 52.0, 58.0)},
    "thick": {"offset": (0.0, 2.5), "axes": (18.0, 12.5), "power": 3.2, "rim": 3.5,
              "top": 5.0, "tint": (105.0, 88.0, 70.0), "tint_alpha": 0.18,
              "glare_alpha": 0.6, "glare_axes": (7.0, 3.0), "colour": (22.0, 19.0, 19.0)},
}
_GLASSES_SUPERSAMPLE = 8  # glasses are drawn at 8x and averaged down: anti-aliased edges
_MOTION_HZ_MIN = 0.04
_MOTION_HZ_SLOW = 0.25  # motion_hz_max up to this: the original, slow-only draw


@dataclass
class ClipSpec:
    """Everything that defines a clip; the defaults build the bundled sample."""

    duration_s: float = 40.0
    fps: float = 30.0
    width: int = 640
    height: int = 480
    heart_rate_bpm: float | None = 72.0  # None: no pulse at all
    pulse_amplitude: float = 2.0  # peak-to-peak change of skin green, in grey levels
    blink_times_s: tuple[float, ...] = _SAMPLE_BLINKS  # blink start times
    blink_duration_s: float = 0.2
    speech: tuple[tuple[float, str], ...] = _SAMPLE_SPEECH  # (start_s, text) per utterance
    speech_voice: str = "en-us"  # espeak-ng -v
    speech_pitch: int = 50  # espeak-ng -p (0..99)
    speech_wpm: int = 150  # espeak-ng -s
    speech_gain: float = 1.0  # loudness of the speech: its peak is 0.7 x this of full scale
    audio_noise_rms: float = 0.0005  # background hiss (full scale = 1), so silence is not 0
    motion_px: float = 3.0  # max head translation per axis, in frame pixels
    lighting_drift: float = 0.03  # relative amplitude of a slow global brightness drift
    noise_std: float = 1.5  # Gaussian sensor noise, grey levels per pixel and channel
    seed: int = 0
    crf: int = 18  # libx264 constant rate factor (20+ starts eating the pulse)
    preset: str = "medium"  # libx264 preset
    # Appearance and geometry (the defaults are the bundled sample; see the tables above).
    skin_tone: str = "original"  # a key of SKIN_TONES
    eyelid: str = "mirror"  # a key of EYELIDS
    glasses: str | None = None  # None, "thin" or "thick"
    face_scale: float = 1.0  # multiplies the face height fraction (face box = 1/3 frame height)
    face_aspect: float = 1.0  # horizontal stretch of the photograph (face width / height)
    motion_hz_max: float = 0.25  # highest head-motion frequency, Hz (heavy motion: ~1.5)


# --------------------------------------------------------------------------- geometry


def _affine_3x3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _placement(spec: ClipSpec) -> np.ndarray:
    """Source->frame affine (3x3) of the resting head: face central, no borders if possible.

    The face box is face_scale / 3 of the frame height and face_aspect times as wide as the
    photograph has it (the whole photograph is stretched horizontally). When the scaled
    photograph is narrower or lower than the frame (small faces), it is centred and the frame
    edges show it mirrored (cv2.BORDER_REFLECT101).
    """
    scale = spec.height * _FACE_HEIGHT_FRACTION * spec.face_scale / _FACE_BOX[3]
    sx = scale * spec.face_aspect
    fx = _FACE_BOX[0] + _FACE_BOX[2] / 2
    fy = _FACE_BOX[1] + _FACE_BOX[3] / 2
    crop_w, crop_h = spec.width / sx, spec.height / scale
    # Keep a margin so motion does not pull in pixels from outside the photograph.
    margin_px = spec.motion_px * (1 + _ROT_DEG_PER_PX * 5) + 2
    src_w = src_h = 512.0

    def clamp(origin: float, crop: float, size: float, margin: float) -> float:
        lo, hi = margin, size - crop - margin
        return (size - crop) / 2 if lo > hi else min(max(origin, lo), hi)

    ox = clamp(fx - crop_w / 2, crop_w, src_w, margin_px / sx)
    oy = clamp(fy - crop_h * _FACE_CENTRE_Y_FRACTION, crop_h, src_h, margin_px / scale)
    return np.array([[sx, 0, -ox * sx], [0, scale, -oy * scale], [0, 0, 1]], float)


def _motion_components(spec: ClipSpec) -> dict[str, list[list[float]]]:
    """Sinusoid components (amplitude, Hz, phase) of dx, dy (px) and rotation (deg).

    Each track is sum(a * (sin(2 pi f t + phase) - sin(phase))): zero at t = 0, so the
    boxes reported for t = 0 are the resting pose. Amplitudes are scaled so the largest
    excursion over the clip equals motion_px (rotation: motion_px * 0.1 degrees).

    With motion_hz_max <= 0.25 (the default) the three frequencies per track are uniform in
    0.04..motion_hz_max, far below the heart-rate band. Above that (heavy motion), they are
    stratified so each track has one slow component (0.04-0.25 Hz) and two in the band
    (0.25..mid and mid..motion_hz_max, mid halfway), as real head movement has.
    """
    if not _MOTION_HZ_MIN < spec.motion_hz_max <= 5.0:
        raise ValueError("motion_hz_max must be in (0.04, 5] Hz")
    rng = np.random.default_rng([spec.seed, 1])
    n = max(2, int(round(spec.duration_s * spec.fps)))
    t = np.arange(n) / spec.fps
    hi = spec.motion_hz_max
    if hi <= _MOTION_HZ_SLOW:
        bands = [(_MOTION_HZ_MIN, hi)] * 3
    else:
        mid = (_MOTION_HZ_SLOW + hi) / 2
        bands = [(_MOTION_HZ_MIN, _MOTION_HZ_SLOW), (_MOTION_HZ_SLOW, mid), (mid, hi)]
    out: dict[str, list[list[float]]] = {}
    for name, target in (("dx", spec.motion_px), ("dy", spec.motion_px),
                         ("angle", spec.motion_px * _ROT_DEG_PER_PX)):
        comps = [
            [float(rng.uniform(0.5, 1.0)), float(rng.uniform(*band)),
             float(rng.uniform(0, 2 * math.pi))]
            for band in bands
        ]
        track = sum(a * (np.sin(2 * np.pi * f * t + p) - math.sin(p)) for a, f, p in comps)
        peak = float(np.max(np.abs(track)))
        k = target / peak if peak > 0 and target > 0 else 0.0
        out[name] = [[a * k, f, p] for a, f, p in comps]
    return out


def _eval_track(comps: list[list[float]], t: float) -> float:
    return float(sum(a * (math.sin(2 * math.pi * f * t + p) - math.sin(p)) for a, f, p in comps))


def _frame_affine(place: np.ndarray, motion: dict[str, list[list[float]]], t: float,
                  pivot: tuple[float, float]) -> np.ndarray:
    """Source->frame affine (2x3) at time t: resting placement, then rotation + shift."""
    dx = _eval_track(motion["dx"], t)
    dy = _eval_track(motion["dy"], t)
    angle = _eval_track(motion["angle"], t)
    rot = _affine_3x3(cv2.getRotationMatrix2D(pivot, angle, 1.0))
    shift = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], float)
    return (shift @ rot @ place)[:2]


def _box_to_frame(box: Sequence[float], m: np.ndarray) -> list[int]:
    """Axis-aligned frame-pixel bounding box [x, y, w, h] of a source box under affine m."""
    x, y, w, h = box
    pts = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]], float)
    q = pts @ m.T
    x0, y0 = np.floor(q.min(0)).astype(int)
    x1, y1 = np.ceil(q.max(0)).astype(int)
    return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]


def _eye_box(eye: tuple[tuple[float, float], tuple[float, float]]) -> tuple[float, ...]:
    (cx, cy), (a, b) = eye
    mx, my = _EYE_BOX_MARGIN
    return (cx - a - mx, cy - b - my, 2 * (a + mx), 2 * (b + my))


# ------------------------------------------------------------------------------ photo


def _load_photo() -> np.ndarray:
    """The bundled photograph as float32 RGB."""
    bgr = cv2.imread(str(PHOTO_PATH), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(PHOTO_PATH)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)


def _ellipse_mask(shape: tuple[int, int], centre: tuple[float, float],
                  axes: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return ((xx - centre[0]) / axes[0]) ** 2 + ((yy - centre[1]) / axes[1]) ** 2 <= 1.0


def _skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Soft [0, 1] mask of facial skin: face ellipse AND a YCrCb skin-colour test.

    The colour test alone also accepts the brown hair and the background; the ellipse alone
    would make eyes, lips and teeth pulse. Those are cut out explicitly.
    """
    ycc = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2YCrCb).astype(np.float32)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    colour = (y > 120) & (cr >= 137) & (cr <= 165) & (cb >= 100) & (cb <= 125)
    shape = y.shape
    mask = colour & _ellipse_mask(shape, *_FACE_ELLIPSE)
    for (c, (a, b)) in _EYES:
        mask &= ~_ellipse_mask(shape, c, (a + 3.0, b + 3.0))
    mask &= ~_ellipse_mask(shape, *_MOUTH)
    m = mask.astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    return cv2.GaussianBlur(m.astype(np.float32), (0, 0), 1.5)


def _tone_mask(rgb: np.ndarray) -> np.ndarray:
    """Soft [0, 1] mask of all visible skin (face, forehead, ears, neck) for the tone change.

    Wider than _skin_mask (which is the pulsing area): a darker face with a light forehead
    rim, jaw or neck would look painted. Face-and-neck region below the hairline AND a loose
    skin-colour test (blue/red > 0.55 rejects the hair), closed and hole-filled so shadows
    and brows inside the face are included; eye openings and teeth are cut out.
    """
    r, b = rgb[..., 0], rgb[..., 2]
    ycc = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2YCrCb).astype(np.float32)
    y, cr = ycc[..., 0], ycc[..., 1]
    shape = y.shape
    rows = np.arange(shape[0])[:, None]
    region = ((_ellipse_mask(shape, (225.0, 116.0), (50.0, 62.0))
               | _ellipse_mask(shape, (226.0, 165.0), (34.0, 26.0))) & (rows >= 73))
    colour = (b / np.maximum(r, 1.0) > 0.55) & (y > 70) & (cr >= 135) & (cr <= 175)
    m = (region & colour).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m)
    if n > 1:  # the face is the largest component; fill its holes
        m = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        m = np.zeros_like(m)
        cv2.drawContours(m, contours, -1, 1, -1)
    soft = cv2.GaussianBlur(m.astype(np.float32), (0, 0), 1.5)
    # Cut eyes and teeth after the blur, with a much narrower edge: the eye whites are only
    # a few pixels tall and must not be tinted.
    cut = (rgb.min(axis=2) > 190) & (np.ptp(rgb, axis=2) < 50) & _ellipse_mask(shape, *_MOUTH)
    for (c, (a, b)) in _EYES:  # _EYES is generous; its outer pixel is lid skin
        cut |= _ellipse_mask(shape, c, (a - 1.5, b - 1.0))
    return soft * (1.0 - cv2.GaussianBlur(cut.astype(np.float32), (0, 0), 0.5))


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = np.clip(v / 255.0, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return 255.0 * np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def skin_tone_gains(tone: str) -> tuple[float, float, float]:
    """Per-channel linear-light albedo gains (R, G, B) of a skin tone (1, 1, 1: original)."""
    if tone not in SKIN_TONES:
        raise ValueError(f"skin_tone must be one of {sorted(SKIN_TONES)}, not {tone!r}")
    target = SKIN_TONES[tone][0]
    if target is None:
        return (1.0, 1.0, 1.0)
    g = _srgb_to_linear(np.array(target)) / _srgb_to_linear(np.array(_SKIN_REFERENCE_RGB))
    return (float(g[0]), float(g[1]), float(g[2]))


def _apply_skin_tone(rgb: np.ndarray, tone: str) -> np.ndarray:
    """The photograph with its skin re-coloured (see SKIN_TONES); float32 RGB 0..255."""
    gains = skin_tone_gains(tone)
    if gains == (1.0, 1.0, 1.0):
        return rgb
    mask = _tone_mask(rgb)[..., None]
    toned = _linear_to_srgb(_srgb_to_linear(rgb) * np.array(gains))
    return (rgb + mask * (toned - rgb)).astype(np.float32)


# ------------------------------------------------------------------------------ glasses


def _superellipse(centre: tuple[float, float], axes: tuple[float, float], power: float,
                  angle: float, n: int = 180) -> np.ndarray:
    """Closed outline |x/a|^p + |y/b|^p = 1, rotated by `angle` (radians), as (n, 2)."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(th), np.sin(th)
    x = axes[0] * np.sign(c) * np.abs(c) ** (2 / power)
    y = axes[1] * np.sign(s) * np.abs(s) ** (2 / power)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([centre[0] + ca * x - sa * y, centre[1] + sa * x + ca * y], axis=1)


def _glasses_geometry(style: str) -> dict[str, Any]:
    """Lens outlines, bridge and temple polylines (photograph coordinates) of a style."""
    st = _GLASSES_STYLE[style]
    (lx, ly), _ = _EYES[0]
    (rx, ry), _ = _EYES[1]
    angle = math.atan2(ry - ly, rx - lx)  # the eyes' line: glasses sit level with it
    ca, sa = math.cos(angle), math.sin(angle)
    ox, oy = st["offset"]
    a, b = st["axes"]
    lenses = []
    for (cx, cy), _ in _EYES:
        centre = (cx + ca * ox - sa * oy, cy + sa * ox + ca * oy)
        lenses.append((centre, _superellipse(centre, (a, b), st["power"], angle)))

    def along(centre: tuple[float, float], u: float, v: float) -> tuple[float, float]:
        return (centre[0] + ca * u - sa * v, centre[1] + sa * u + ca * v)

    (c0, _), (c1, _) = lenses
    # Bridge: from the inner edge of one lens to the other, arched up over the nose.
    p0, p1 = along(c0, a * 0.97, -0.35 * b), along(c1, -a * 0.97, -0.35 * b)
    mid = ((p0[0] + p1[0]) / 2 - sa * -3.0, (p0[1] + p1[1]) / 2 + ca * -3.0)
    bridge = np.array([p0, ((p0[0] + mid[0]) / 2, (p0[1] + mid[1]) / 2 - 1.2), mid,
                       ((p1[0] + mid[0]) / 2, (p1[1] + mid[1]) / 2 - 1.2), p1])
    # Temples: from the outer top corner of each lens towards the ears (behind the hair).
    temples = [np.array([along(c0, -a * 0.95, -0.55 * b), along(c0, -a - 9.0, -0.75 * b)]),
               np.array([along(c1, a * 0.95, -0.55 * b), along(c1, a + 9.0, -0.75 * b)])]
    # Glare: a soft elliptical highlight on the upper outer part of each lens.
    ga, gb = st["glare_axes"]
    glare = [(along(c0, -0.5 * a, -0.5 * b), (ga, gb), angle - 0.5),
             (along(c1, 0.5 * a, -0.5 * b), (ga, gb), angle + 0.5)]
    return {"angle": angle, "lenses": lenses, "bridge": bridge, "temples": temples,
            "glare": glare}


def _glasses_boxes(style: str) -> list[tuple[float, float, float, float]]:
    """[x, y, w, h] (photograph) of each lens with its rim, viewer's left first."""
    st = _GLASSES_STYLE[style]
    out = []
    for _, outline in _glasses_geometry(style)["lenses"]:
        (x0, y0), (x1, y1) = outline.min(axis=0), outline.max(axis=0)
        h = st["rim"] / 2
        out.append((float(x0 - h), float(y0 - st["top"] / 2), float(x1 - x0 + 2 * h),
                    float(y1 - y0 + h + st["top"] / 2)))
    return out


@functools.lru_cache(maxsize=4)
def _glasses_layer(style: str, shape: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray,
                                                                 np.ndarray]:
    """Glasses as a constant 'over' layer on a window of the photograph.

    Returns ((y0, x0), keep, add): composited as window * keep + add. keep is 0 on the rims,
    bridge and temples (opaque: they do not pulse), 1 - tint alpha (and less under the glare)
    on the lenses, so whatever is under a lens (skin pulse, eyelids) shows through dimmed.
    """
    st = _GLASSES_STYLE[style]
    geo = _glasses_geometry(style)
    pts = np.concatenate([o for _, o in geo["lenses"]] + geo["temples"] + [geo["bridge"]])
    pad = st["top"] + 4
    x0, y0 = int(math.floor(pts[:, 0].min() - pad)), int(math.floor(pts[:, 1].min() - pad))
    x1, y1 = int(math.ceil(pts[:, 0].max() + pad)), int(math.ceil(pts[:, 1].max() + pad))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
    k = _GLASSES_SUPERSAMPLE
    size = ((y1 - y0) * k, (x1 - x0) * k)

    def canvas() -> np.ndarray:
        return np.zeros(size, np.uint8)

    def to_ss(p: np.ndarray) -> np.ndarray:  # photograph -> supersampled canvas (pixel centres)
        return np.rint((p - [x0 - 0.5, y0 - 0.5]) * k - 0.5).astype(np.int32)

    def down(m: np.ndarray) -> np.ndarray:
        return cv2.resize(m.astype(np.float32) / 255.0, (x1 - x0, y1 - y0),
                          interpolation=cv2.INTER_AREA)

    lens, rim, glare = canvas(), canvas(), canvas()
    a, b = st["axes"]
    for centre, outline in geo["lenses"]:
        cv2.fillPoly(lens, [to_ss(outline)], 255)
        cv2.polylines(rim, [to_ss(outline)], True, 255, max(1, int(round(st["rim"] * k))))
        if st["top"] > st["rim"]:  # heavier top bar: the upper half of the outline, thicker
            upper = outline[(outline[:, 1] - centre[1]) < -0.25 * b]
            order = np.argsort(np.arctan2(upper[:, 1] - centre[1], upper[:, 0] - centre[0]))
            cv2.polylines(rim, [to_ss(upper[order])], False, 255, int(round(st["top"] * k)))
    cv2.polylines(rim, [to_ss(geo["bridge"])], False, 255, int(round(max(st["rim"], 1.2) * k)))
    for temple in geo["temples"]:
        cv2.polylines(rim, [to_ss(temple)], False, 255, int(round(max(st["rim"], 1.2) * k)))
    for centre, axes, ang in geo["glare"]:
        c = to_ss(np.array([centre]))[0]
        cv2.ellipse(glare, (int(c[0]), int(c[1])), (int(axes[0] * k), int(axes[1] * k)),
                    math.degrees(ang), 0, 360, 255, -1)
    a_lens, a_rim = down(lens), down(rim)
    a_glare = cv2.GaussianBlur(down(glare), (0, 0), 1.0) * a_lens * st["glare_alpha"]
    a_tint = a_lens * st["tint_alpha"]
    colour = np.array(st["colour"], np.float32)
    # over(rim, over(glare, over(tint, window)))
    keep = (1 - a_tint) * (1 - a_glare) * (1 - a_rim)
    add = ((a_tint[..., None] * np.array(st["tint"], np.float32) * (1 - a_glare[..., None])
            + a_glare[..., None] * 250.0) * (1 - a_rim[..., None])
           + a_rim[..., None] * colour)
    keep[a_rim >= 1.0 - 1e-6] = 0.0  # exactly opaque
    return (y0, x0), keep[..., None].astype(np.float32), add.astype(np.float32)


# ------------------------------------------------------------------------------ pulse


def _pulse_template(phase: np.ndarray) -> np.ndarray:
    """Blood-volume pulse shape over one beat: systolic peak plus a smaller diastolic wave."""
    out = np.zeros_like(phase, dtype=np.float64)
    for k in (-1, 0, 1):
        out += np.exp(-0.5 * ((phase - 0.20 + k) / 0.09) ** 2)
        out += 0.45 * np.exp(-0.5 * ((phase - 0.52 + k) / 0.12) ** 2)
    return out


_GRID = np.arange(20000) / 20000.0
_TPL = _pulse_template(_GRID)
_TPL_MIN, _TPL_MAX = float(_TPL.min()), float(_TPL.max())
_TPL_PEAK = float(_GRID[int(np.argmax(_TPL))])
_TPL_MEAN = float(((_TPL - _TPL_MIN) / (_TPL_MAX - _TPL_MIN)).mean())


def _pulse(t: np.ndarray | float, bpm: float, first_beat_s: float) -> np.ndarray:
    """Zero-mean blood volume in [-mean, 1 - mean]; maxima exactly at the beat times."""
    phase = np.mod((np.asarray(t, float) - first_beat_s) * bpm / 60.0 + _TPL_PEAK, 1.0)
    return (_pulse_template(phase) - _TPL_MIN) / (_TPL_MAX - _TPL_MIN) - _TPL_MEAN


# ------------------------------------------------------------------------------ blinks


def _closure(t: float, start: float, duration: float) -> float:
    """Eyelid closure 0..1: smooth fast close, slower open (C1 continuous)."""
    u = (t - start) / duration
    if u <= 0.0 or u >= 1.0:
        return 0.0
    if u < _BLINK_CLOSE_FRACTION:
        return math.sin(0.5 * math.pi * u / _BLINK_CLOSE_FRACTION) ** 2
    return math.cos(0.5 * math.pi * (u - _BLINK_CLOSE_FRACTION) / (1 - _BLINK_CLOSE_FRACTION)) ** 2


def _paint_lids(img: np.ndarray, closure: float, texture: str = "mirror") -> None:
    """Draw upper eyelids lowered by `closure` over both eyes of the (source) image, in place.

    The lid follows the eye's outline (a little beyond it, to hide the real lash line). With
    texture "mirror" its skin is the skin below the eye mirrored upwards (above the eye sits
    the eyebrow), so colour and texture match; the other textures (EYELIDS) start from the
    mean colour of the skin ring around the eye. A thin dark lash line marks the lid edge.
    """
    for (cx, cy), (a, b) in _EYES:
        a2, b_top, b_bot = a + 1.5, b + 2.0, b + 1.0
        x0, x1 = int(cx - a2 - 2), int(math.ceil(cx + a2 + 2))
        y0, y1 = int(cy - b_top - 2), int(math.ceil(cy + b_bot + 2))
        patch = img[y0:y1, x0:x1]
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        shape = np.sqrt(1.0 - np.clip((xx - cx) / a2, -1.0, 1.0) ** 2)
        top, bottom = cy - b_top * shape, cy + b_bot * shape
        inside = (np.clip((yy - top) / 2.0 + 0.5, 0.0, 1.0)
                  * np.clip(bottom - yy + 1.0, 0.0, 1.0)
                  * np.clip(a2 + 0.5 - np.abs(xx - cx), 0.0, 1.0))
        edge = top + closure * (bottom - top)
        cover = inside * np.clip(edge - yy + 0.5, 0.0, 1.0)
        mirror_row = np.rint(2 * (cy + b_bot) + 2 - yy).astype(int)
        lid = cv2.GaussianBlur(img[mirror_row, xx.astype(int)], (0, 0), 0.8)
        # Match the lid's mean colour to the skin ring around the eye (shaded eye socket).
        ring = (inside == 0) & (yy > top - 3) & (yy < bottom + 3) & (np.abs(xx - cx) < a2 + 3)
        if texture == "mirror":
            lid += patch[ring].mean(axis=0) - lid[inside > 0.5].mean(axis=0)
        else:
            socket = patch[ring].mean(axis=0)
            detail = lid - lid[inside > 0.5].mean(axis=0)
            if texture == "smooth":
                lid = socket + 0.15 * detail
            elif texture == "dark":
                lid = socket * np.array([0.55, 0.47, 0.52], np.float32) + 0.5 * detail
            elif texture == "pale":
                lid = socket + 0.3 * (np.array([240.0, 232.0, 228.0], np.float32) - socket)
                lid = lid + 0.5 * detail
            else:
                raise ValueError(f"eyelid must be one of {sorted(EYELIDS)}, not {texture!r}")
        lash = inside * np.exp(-(((yy - edge) / 0.7) ** 2)) * min(1.0, 3.0 * closure) * shape
        out = patch * (1 - cover[..., None]) + lid * cover[..., None]
        out *= 1.0 - 0.4 * lash[..., None]
        img[y0:y1, x0:x1] = out


# ------------------------------------------------------------------------------ audio


def _render_utterance(text: str, spec: ClipSpec, tmp: Path) -> np.ndarray:
    """espeak-ng speech as float32 at AUDIO_RATE, trimmed to its audible extent."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise RuntimeError("espeak-ng is required for speech (apt-get install espeak-ng)")
    wav_path = tmp / "utt.wav"
    subprocess.run(
        [exe, "-v", spec.speech_voice, "-p", str(spec.speech_pitch), "-s", str(spec.speech_wpm),
         "-w", str(wav_path), text],
        check=True, capture_output=True,
    )
    with wave.open(str(wav_path), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise RuntimeError(f"unexpected espeak-ng sample width {width}")
    x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    x = x.reshape(-1, channels).mean(axis=1)
    y = _resample(x, rate, AUDIO_RATE)
    loud = np.flatnonzero(np.abs(y) > 0.01 * np.max(np.abs(y)))
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    y = y[loud[0]:loud[-1] + 1]
    return (0.7 * spec.speech_gain * y / np.max(np.abs(y))).astype(np.float32)


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited (FFT) resampling; zero padding keeps the periodic wrap-around silent."""
    if rate_in == rate_out:
        return x
    pad = rate_in // 10
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    n_out = int(round(len(xp) * rate_out / rate_in))
    spec = np.fft.rfft(xp)
    n_bins = n_out // 2 + 1
    spec = spec[:n_bins] if len(spec) >= n_bins else np.pad(spec, (0, n_bins - len(spec)))
    y = np.fft.irfft(spec, n_out) * (n_out / len(xp))
    cut = int(round(pad * rate_out / rate_in))
    return y[cut:n_out - cut]


def _f0_median(x: np.ndarray, rate: int) -> float | None:
    """Median fundamental frequency of voiced 40 ms frames (autocorrelation, 60..400 Hz)."""
    n, hop = int(0.04 * rate), int(0.01 * rate)
    lo, hi = rate // 400, rate // 60
    rms_all = float(np.sqrt(np.mean(x ** 2)))
    f0s = []
    for i in range(0, len(x) - n, hop):
        f = x[i:i + n] - x[i:i + n].mean()
        if np.sqrt(np.mean(f ** 2)) < 0.5 * rms_all:
            continue
        ac = np.correlate(f, f, "full")[n - 1:]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.5:
            f0s.append(rate / lag)
    return float(np.median(f0s)) if f0s else None


def _build_audio(
    spec: ClipSpec, n_samples: int
) -> tuple[np.ndarray, list[list[Any]], float | None]:
    """The whole mono track plus the measured [start, end, text] of each utterance."""
    rng = np.random.default_rng([spec.seed, 2])
    track = (rng.standard_normal(n_samples) * spec.audio_noise_rms).astype(np.float32)
    intervals: list[list[Any]] = []
    f0s = []
    with tempfile.TemporaryDirectory() as d:
        for start, text in sorted(spec.speech):
            y = _render_utterance(text, spec, Path(d))
            i0 = int(round(start * AUDIO_RATE))
            end = (i0 + len(y)) / AUDIO_RATE
            if start < 0 or i0 + len(y) > n_samples:
                raise ValueError(f"utterance {text!r} ({start:.2f}-{end:.2f} s) "
                                 f"does not fit in {spec.duration_s} s")
            if intervals and start < intervals[-1][1]:
                raise ValueError(f"utterance {text!r} overlaps the previous one")
            track[i0:i0 + len(y)] += y
            intervals.append([round(start, 6), round(end, 6), text])
            f0 = _f0_median(y.astype(np.float64), AUDIO_RATE)
            if f0:
                f0s.append(f0)
    return track, intervals, (round(float(np.median(f0s)), 1) if f0s else None)


# ------------------------------------------------------------------------------ writer


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _validate(spec: ClipSpec) -> None:
    if spec.duration_s <= 0 or spec.fps <= 0 or spec.width < 64 or spec.height < 64:
        raise ValueError("duration, fps must be > 0 and the frame at least 64x64")
    if spec.width % 2 or spec.height % 2:
        raise ValueError("width and height must be even (yuv420p)")
    if spec.heart_rate_bpm is not None and not 30 <= spec.heart_rate_bpm <= 240:
        raise ValueError("heart_rate_bpm must be in 30..240 or None")
    times = sorted(spec.blink_times_s)
    for t in times:
        if t < 0 or t + spec.blink_duration_s > spec.duration_s:
            raise ValueError(f"blink at {t} s does not fit in {spec.duration_s} s")
    for a, b in zip(times, times[1:]):
        if b < a + spec.blink_duration_s:
            raise ValueError(f"blinks at {a} s and {b} s overlap")
    if spec.skin_tone not in SKIN_TONES:
        raise ValueError(f"skin_tone must be one of {sorted(SKIN_TONES)}")
    if spec.eyelid not in EYELIDS:
        raise ValueError(f"eyelid must be one of {sorted(EYELIDS)}")
    if spec.glasses not in GLASSES:
        raise ValueError("glasses must be None, 'thin' or 'thick'")
    if not 0.3 <= spec.face_scale <= 2.0 or not 0.5 <= spec.face_aspect <= 2.0:
        raise ValueError("face_scale must be in 0.3..2 and face_aspect in 0.5..2")
    if not _MOTION_HZ_MIN < spec.motion_hz_max <= 5.0:
        raise ValueError("motion_hz_max must be in (0.04, 5] Hz")


def _first_beat(spec: ClipSpec) -> float:
    """Time of the first blood-volume maximum (random phase within the first period)."""
    if spec.heart_rate_bpm is None:
        return 0.0
    return float(np.random.default_rng([spec.seed, 3]).uniform(0, 60.0 / spec.heart_rate_bpm))


@functools.lru_cache(maxsize=8)
def _toned_photo(tone: str) -> tuple[np.ndarray, np.ndarray]:
    """(photograph with the skin tone applied, pulse skin mask); read-only, cached."""
    photo = _load_photo()
    skin = _skin_mask(photo)  # where skin is: from the photograph before any re-colouring
    toned = _apply_skin_tone(photo, tone)
    toned.flags.writeable = skin.flags.writeable = False
    return toned, skin


class _Scene:
    """What stays the same over a clip (toned photograph, masks, glasses, placement, motion,
    beat phase), and the rendering of the photograph and the frame at one instant."""

    def __init__(self, spec: ClipSpec) -> None:
        self.spec = spec
        self.photo, skin = _toned_photo(spec.skin_tone)
        ys, xs = np.nonzero(skin > 1e-3)
        self.skin_box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
        sy0, sy1, sx0, sx1 = self.skin_box
        self.skin_crop = skin[sy0:sy1, sx0:sx1, None]
        self.weights = np.array(_PULSE_RGB_WEIGHTS, np.float32)
        self.glasses = (_glasses_layer(spec.glasses, self.photo.shape[:2])
                        if spec.glasses is not None else None)
        self.place = _placement(spec)
        self.motion = _motion_components(spec)
        face_c = self.place @ np.array([_FACE_BOX[0] + _FACE_BOX[2] / 2,
                                        _FACE_BOX[1] + _FACE_BOX[3] / 2, 1])
        self.pivot = (float(face_c[0]), float(face_c[1]))
        self.first_beat = _first_beat(spec)
        self.blinks = sorted(spec.blink_times_s)

    def pulse(self, t: float) -> float:
        """Blood volume at t (zero mean; 0 without a pulse); skin green drops by amp * this."""
        if self.spec.heart_rate_bpm is None or self.spec.pulse_amplitude <= 0:
            return 0.0
        return float(_pulse(t, self.spec.heart_rate_bpm, self.first_beat))

    def source(self, t: float) -> np.ndarray:
        """The photograph at instant t: pulse on the skin, eyelids, glasses (float32 RGB)."""
        spec = self.spec
        img = self.photo.copy()
        if spec.heart_rate_bpm is not None and spec.pulse_amplitude > 0:
            p = self.pulse(t)
            sy0, sy1, sx0, sx1 = self.skin_box
            img[sy0:sy1, sx0:sx1] -= (spec.pulse_amplitude * p) * self.weights * self.skin_crop
        for b in self.blinks:
            c = _closure(t, b, spec.blink_duration_s)
            if c > 0:
                _paint_lids(img, c, spec.eyelid)
        if self.glasses is not None:
            (gy, gx), keep, add = self.glasses
            win = img[gy:gy + keep.shape[0], gx:gx + keep.shape[1]]
            win *= keep
            win += add
        return img

    def affine(self, t: float) -> np.ndarray:
        """Source->frame affine (2x3) at t."""
        return _frame_affine(self.place, self.motion, t, self.pivot)

    def frame(self, t: float) -> np.ndarray:
        """Frame at t before lighting gain and sensor noise (float32 RGB)."""
        return cv2.warpAffine(self.source(t), self.affine(t), (self.spec.width, self.spec.height),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)

    def gain(self, t: float) -> float:
        return 1.0 + self.spec.lighting_drift * math.sin(2 * math.pi * t / _LIGHT_PERIOD_S)


def render_frames(spec: ClipSpec, times: Sequence[float],
                  *, gain: bool = True) -> list[np.ndarray]:
    """Frames (uint8 RGB) at the given instants as make_clip draws them, without sensor
    noise and encoding: for checking what each spec field does to the pixels."""
    _validate(spec)
    scene = _Scene(spec)
    out = []
    for t in times:
        f = scene.frame(t) * (scene.gain(t) if gain else 1.0)
        out.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
    return out


def pulse_at(spec: ClipSpec, times: Sequence[float]) -> np.ndarray:
    """Blood volume (zero mean, peak-to-peak 1) at the given instants, as make_clip uses it:
    skin green is lowered by pulse_amplitude * this. Zeros without a pulse."""
    if spec.heart_rate_bpm is None or spec.pulse_amplitude <= 0:
        return np.zeros(len(times))
    return _pulse(np.asarray(times, float), spec.heart_rate_bpm, _first_beat(spec))


def make_clip(path: Path, spec: ClipSpec | None = None) -> dict[str, Any]:
    """Write an H.264/AAC mp4 described by `spec` and return its ground truth.

    Deterministic for a given spec: the ground truth is identical on every run, and the mp4
    is byte-identical as long as the bundled encoders do not change.
    """
    spec = spec or ClipSpec()
    _validate(spec)
    path = Path(path)
    n_frames = int(round(spec.duration_s * spec.fps))
    rate = Fraction(spec.fps).limit_denominator(1001)
    n_audio = int(round(n_frames / spec.fps * AUDIO_RATE))
    audio, speech_intervals, f0 = _build_audio(spec, n_audio)

    scene = _Scene(spec)
    noise_rng = np.random.default_rng([spec.seed, 4])
    # Fresh Gaussian noise per frame costs more than the encoder; a randomly offset window
    # into one larger noise field is indistinguishable for our purposes.
    noise_bank = noise_rng.standard_normal(
        (spec.height + _NOISE_PAD, spec.width + _NOISE_PAD, 3), np.float32)

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", container_options={"movflags": "+faststart"}) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = spec.width, spec.height, "yuv420p"
        vs.options = {"crf": str(spec.crf), "preset": spec.preset}
        cc = vs.codec_context
        cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 6, 6, 6, 1  # BT.601
        as_ = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        as_.bit_rate = 96000
        a_pos = 0

        def push_audio(upto: int) -> None:
            nonlocal a_pos
            while a_pos < min(upto, n_audio):
                chunk = audio[a_pos:min(a_pos + 1024, n_audio)]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = AUDIO_RATE, a_pos, Fraction(1, AUDIO_RATE)
                out.mux(as_.encode(af))
                a_pos += len(chunk)

        for i in range(n_frames):
            t = i / spec.fps
            frame = scene.frame(t)
            gain = scene.gain(t)
            oy, ox = noise_rng.integers(0, _NOISE_PAD + 1, 2)
            noise = noise_bank[oy:oy + spec.height, ox:ox + spec.width]
            # gain * frame + std * noise, rounded and saturated to uint8 in one pass
            rgb = cv2.addWeighted(frame, gain, noise, spec.noise_std, 0.0, dtype=cv2.CV_8U)
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = i, 1 / rate
            out.mux(vs.encode(vf))
            push_audio(int(round((i + 1) / spec.fps * AUDIO_RATE)))
        push_audio(n_audio)
        out.mux(vs.encode(None))
        out.mux(as_.encode(None))

    return _truth(spec, scene, path.name, _sha256(path), n_audio, speech_intervals, f0)


def ground_truth(spec: ClipSpec | None = None) -> dict[str, Any]:
    """The ground truth make_clip would return for `spec`, without rendering the video
    ("file" and "file_sha256" are None). Speech is still rendered, for its intervals."""
    spec = spec or ClipSpec()
    _validate(spec)
    n_frames = int(round(spec.duration_s * spec.fps))
    n_audio = int(round(n_frames / spec.fps * AUDIO_RATE))
    _, speech_intervals, f0 = _build_audio(spec, n_audio)
    return _truth(spec, _Scene(spec), None, None, n_audio, speech_intervals, f0)


def _truth(spec: ClipSpec, scene: _Scene, file: str | None, file_sha: str | None,
           n_audio: int, speech_intervals: list[list[Any]], f0: float | None
           ) -> dict[str, Any]:
    n_frames = int(round(spec.duration_s * spec.fps))
    place, motion, pivot = scene.place, scene.motion, scene.pivot
    first_beat, blinks = scene.first_beat, scene.blinks
    m0 = _frame_affine(place, motion, 0.0, pivot)
    beats: list[float] = []
    if spec.heart_rate_bpm is not None:
        period = 60.0 / spec.heart_rate_bpm
        k = 0
        while first_beat + k * period < n_frames / spec.fps:
            beats.append(round(first_beat + k * period, 6))
            k += 1
    spec_d = dataclasses.asdict(spec)
    spec_d["blink_times_s"] = list(spec.blink_times_s)
    spec_d["speech"] = [[s, txt] for s, txt in spec.speech]
    if spec.face_scale == 1.0 and spec.face_aspect == 1.0:
        placed = "scaled so the face box is 1/3 of the frame height"
    else:
        placed = (f"scaled so the face box is {spec.face_scale:g} x 1/3 of the frame height "
                  f"and stretched {spec.face_aspect:g} x horizontally")
    return {
        "generator": "streamer.synthetic",
        "generator_version": GENERATOR_VERSION,
        "file": file,
        "file_sha256": file_sha,
        "photo_sha256": _sha256(PHOTO_PATH),
        "spec": spec_d,
        "video": {"codec": "h264", "pix_fmt": "yuv420p", "colorspace": "bt601",
                  "fps": spec.fps, "width": spec.width, "height": spec.height,
                  "n_frames": n_frames, "duration_s": round(n_frames / spec.fps, 6)},
        "audio": {"codec": "aac", "sample_rate": AUDIO_RATE, "channels": 1,
                  "n_samples": n_audio},
        "duration_s": round(n_frames / spec.fps, 6),
        "face_box": _box_to_frame(_FACE_BOX, m0),
        "eye_boxes": [_box_to_frame(_eye_box(e), m0) for e in _EYES],
        "skin_roi": _box_to_frame(_SKIN_ROI, m0),
        "glasses_boxes": ([_box_to_frame(b, m0) for b in _glasses_boxes(spec.glasses)]
                          if spec.glasses is not None else []),
        "boxes_note": "[x, y, w, h] in frame pixels at t = 0 (rest pose); the head then moves "
                      "by at most motion_px (see motion)",
        "heart_rate_bpm": spec.heart_rate_bpm,
        "beat_times_s": beats,
        "beat_note": "beat = blood-volume maximum = skin darkest (green lowest)",
        "blink_intervals_s": [[round(b, 6), round(b + spec.blink_duration_s, 6)] for b in blinks],
        "blink_closed_s": [round(b + _BLINK_CLOSE_FRACTION * spec.blink_duration_s, 6)
                           for b in blinks],
        "speech_intervals_s": speech_intervals,
        "speech_f0_median_hz": f0,
        "motion": {
            "model": "x(t) = sum(a * (sin(2*pi*f*t + phase) - sin(phase))) for [a, f, phase]; "
                     "frame = shift(dx, dy) o rotate(angle deg about pivot) o placement(photo)",
            "angle_sign": "cv2.getRotationMatrix2D: positive = anticlockwise on screen",
            "pivot": [round(pivot[0], 4), round(pivot[1], 4)],
            "placement": np.round(place[:2], 6).tolist(),
            **{k: [[round(v, 9) for v in c] for c in comps] for k, comps in motion.items()},
        },
        "appearance": {
            "skin_tone": SKIN_TONES[spec.skin_tone][1],
            "skin_tone_gains_linear_rgb": [round(g, 6) for g in skin_tone_gains(spec.skin_tone)],
            "eyelid": EYELIDS[spec.eyelid],
            "glasses": GLASSES[spec.glasses],
            "notes": "skin tone changes all visible skin (face, ears, neck), before the pulse, "
                     "so pulse_amplitude is the absolute green change on the re-coloured "
                     "skin; glasses are drawn on the photograph after pulse and eyelids "
                     "(they move with the head; rims do not pulse; under a lens skin and "
                     "lids show through, dimmed by the tint); glasses_boxes = lens + rim "
                     "boxes at t = 0",
        },
        "lighting": f"gain(t) = 1 + {spec.lighting_drift} * sin(2*pi*t / {_LIGHT_PERIOD_S})",
        "how_made": (
            "NASA portrait of Eileen Collins (public domain, via scikit-image's astronaut()) "
            f"{placed}; frame i shows the instant "
            "t = i / fps (no exposure blur) with: a blood-volume "
            "pulse (systolic + diastolic Gaussian shape, RGB weights "
            f"{list(_PULSE_RGB_WEIGHTS)}) subtracted from skin pixels (face ellipse AND YCrCb "
            "skin colour, eyes and mouth removed), eyelids painted over both eyes during "
            "blinks (fast close 40 %, open 60 %), smooth head motion via cv2.warpAffine, "
            "global lighting gain, Gaussian sensor noise; encoded with libx264 "
            f"crf {spec.crf} yuv420p. Audio: espeak-ng utterances, FFT-resampled to "
            f"{AUDIO_RATE} Hz, trimmed to their audible extent, peak 0.7, placed at their "
            "start times over faint noise; AAC 96 kb/s mono."
        ),
    }


# ------------------------------------------------------------------------------ sample


_SAMPLE_MD = """\
# Bundled sample clip

`sample.mp4` is a synthetic {duration:g} s, {width}x{height}, {fps:g} fps H.264 + AAC clip of a
face with a known pulse, known blinks and known speech. `sample.json` is its exact ground truth.
Later stages (rPPG heart rate, blink detection, voice pitch, speech-to-text) are validated
against it (`tests/unit/test_sample_clip.py`).

## How it was made

```
python -m wellmon.streamer.synthetic --sample
```

run from the repository root (generator `streamer/synthetic.py`, version {version}). It
rewrites `sample.mp4`, `sample.json` and this file. The ground truth is deterministic; the
mp4 bytes are identical as long as PyAV's bundled libx264/AAC encoders do not change.

Per frame, the photograph is scaled so the face is a third of the frame height; a blood-volume
pulse is subtracted from the skin pixels only (strongest in green), eyelids are painted over
both eyes during blinks, the head moves by up to {motion:g} px (smooth sinusoids below 0.25 Hz,
tiny rotation), a slow global lighting drift ({drift:g}) and Gaussian sensor noise
(std {noise:g}) are added, then libx264 (crf {crf}, yuv420p, BT.601) encodes it. The audio is
espeak-ng speech at 48 kHz mono, AAC.

## Ingredients and licences

* `astronaut.jpg`: NASA portrait photograph of astronaut Eileen Collins, from the NASA Great
  Images database (<https://flic.kr/p/r9qvLn>); a work of NASA, public domain ("no known
  copyright restrictions, released into the public domain", scikit-image's documentation).
  Taken from scikit-image 0.26's `skimage.data.astronaut()` (512x512) and saved once
  with OpenCV as JPEG quality 95, so run-time code does not need scikit-image:
  `cv2.imwrite("astronaut.jpg", astronaut()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])`.
  sha256 `{photo_sha}`.
* Speech: synthesized by espeak-ng {espeak} (GPL-3.0 program; its audio output is not
  covered by the program's licence), voice `{voice}`, pitch {pitch}, {wpm} words/min.
* Everything else (animation, pulse, blinks, noise) is generated by `streamer/synthetic.py`.

## Ground truth (all times in seconds from the start)

* Heart rate: **{hr} bpm**, pulse peak-to-peak {amp:g} grey levels in green on skin;
  {n_beats} beats, first at {first_beat:.3f} s (beat = skin darkest).
* Blinks ({n_blinks}, {blink_dur:g} s each, fully closed at 40 %): {blinks}.
* Speech (start, end, text):
{speech}
* Median voice F0 (autocorrelation on the rendered speech): {f0} Hz.
* Boxes at t = 0, `[x, y, w, h]` frame pixels: face {face}, eyes {eyes}, skin ROI {roi}.

## Checksum

sha256 of `sample.mp4`: `{sha}`
"""


def to_json(truth: dict[str, Any]) -> str:
    """Ground truth as JSON text: indented, but each list of scalars kept on one line."""
    text = json.dumps(truth, indent=1, ensure_ascii=False)
    return re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\s*\n\s*", " ", m.group(0))
                  .replace("[ ", "[").replace(" ]", "]"), text) + "\n"


def _espeak_version() -> str:
    try:
        res = subprocess.run([ESPEAK, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "(unknown version)"
    found = re.search(r"\d+\.\d+(?:\.\d+)?", res.stdout)
    return found.group(0) if found else "(unknown version)"


def build_sample(sample_dir: Path = SAMPLE_DIR) -> dict[str, Any]:
    """(Re)build sample.mp4, sample.json and SAMPLE.md from the default ClipSpec."""
    spec = ClipSpec()
    truth = make_clip(sample_dir / "sample.mp4", spec)
    (sample_dir / "sample.json").write_text(to_json(truth))
    md = _SAMPLE_MD.format(
        duration=truth["duration_s"], width=spec.width, height=spec.height, fps=spec.fps,
        version=GENERATOR_VERSION, motion=spec.motion_px, drift=spec.lighting_drift,
        noise=spec.noise_std, crf=spec.crf, espeak=_espeak_version(), voice=spec.speech_voice,
        pitch=spec.speech_pitch, wpm=spec.speech_wpm, hr=f"{spec.heart_rate_bpm:g}",
        amp=spec.pulse_amplitude, n_beats=len(truth["beat_times_s"]),
        first_beat=truth["beat_times_s"][0], n_blinks=len(truth["blink_intervals_s"]),
        blink_dur=spec.blink_duration_s,
        blinks=", ".join(f"{a:g}-{b:g}" for a, b in truth["blink_intervals_s"]),
        speech="\n".join(f"  * {a:.3f} - {b:.3f}: \"{txt}\""
                         for a, b, txt in truth["speech_intervals_s"]),
        f0=truth["speech_f0_median_hz"], face=truth["face_box"], eyes=truth["eye_boxes"],
        roi=truth["skin_roi"], sha=truth["file_sha256"],
        photo_sha=truth["photo_sha256"],
    )
    (sample_dir / "SAMPLE.md").write_text(md)
    return truth


# ------------------------------------------------------------------------------ CLI


def _fit(spec: ClipSpec) -> ClipSpec:
    """Drop default blinks/utterances that cannot fit a shorter clip (CLI convenience)."""
    blinks = tuple(t for t in spec.blink_times_s
                   if t + spec.blink_duration_s <= spec.duration_s)
    speech = []
    with tempfile.TemporaryDirectory() as d:
        for start, text in spec.speech:
            length = len(_render_utterance(text, spec, Path(d))) / AUDIO_RATE
            if start + length < spec.duration_s:
                speech.append((start, text))
    return dataclasses.replace(spec, blink_times_s=blinks, speech=tuple(speech))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: --sample rebuilds the bundled sample; otherwise write OUT.mp4."""
    ap = argparse.ArgumentParser(prog="python -m wellmon.streamer.synthetic", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", type=Path,
                    help="output .mp4 (ground truth: .json next to it)")
    ap.add_argument("--sample", action="store_true", help="rebuild streamer/sample/")
    ap.add_argument("--json", type=Path, help="ground-truth path (default: OUT with .json)")
    ap.add_argument("--duration", type=float, help="seconds")
    ap.add_argument("--fps", type=float)
    ap.add_argument("--width", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--heart-rate", help="bpm, or 'none' for no pulse")
    ap.add_argument("--pulse-amplitude", type=float, help="peak-to-peak green, grey levels")
    ap.add_argument("--blinks", help="comma-separated blink start times (s); '' for none")
    ap.add_argument("--speech", action="append", metavar="START:TEXT",
                    help="utterance, repeatable (replaces the default sentences)")
    ap.add_argument("--no-speech", action="store_true")
    ap.add_argument("--motion", type=float, help="max head translation, px")
    ap.add_argument("--lighting-drift", type=float)
    ap.add_argument("--noise", type=float, help="sensor noise std, grey levels")
    ap.add_argument("--crf", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--skin-tone", choices=sorted(SKIN_TONES))
    ap.add_argument("--eyelid", choices=sorted(EYELIDS))
    ap.add_argument("--glasses", choices=["none", "thin", "thick"])
    ap.add_argument("--face-scale", type=float, help="face height x 1/3 of the frame")
    ap.add_argument("--face-aspect", type=float, help="horizontal stretch of the face")
    ap.add_argument("--motion-hz-max", type=float, help="highest head-motion frequency, Hz")
    args = ap.parse_args(argv)

    if args.sample:
        truth = build_sample()
        print(f"wrote {SAMPLE_DIR / 'sample.mp4'} ({truth['duration_s']} s, "
              f"sha256 {truth['file_sha256']})")
        return 0
    if args.out is None:
        ap.error("give OUT.mp4 or --sample")

    changes: dict[str, Any] = {}
    for arg, name in (("duration", "duration_s"), ("fps", "fps"), ("width", "width"),
                      ("height", "height"), ("pulse_amplitude", "pulse_amplitude"),
                      ("motion", "motion_px"), ("lighting_drift", "lighting_drift"),
                      ("noise", "noise_std"), ("crf", "crf"), ("seed", "seed"),
                      ("skin_tone", "skin_tone"), ("eyelid", "eyelid"),
                      ("face_scale", "face_scale"), ("face_aspect", "face_aspect"),
                      ("motion_hz_max", "motion_hz_max")):
        if getattr(args, arg) is not None:
            changes[name] = getattr(args, arg)
    if args.glasses is not None:
        changes["glasses"] = None if args.glasses == "none" else args.glasses
    if args.heart_rate is not None:
        hr = args.heart_rate.strip().lower()
        changes["heart_rate_bpm"] = None if hr in ("none", "0", "") else float(hr)
    if args.blinks is not None:
        changes["blink_times_s"] = tuple(float(s) for s in args.blinks.split(",") if s.strip())
    if args.no_speech:
        changes["speech"] = ()
    elif args.speech:
        utts = []
        for item in args.speech:
            start, _, text = item.partition(":")
            utts.append((float(start), text))
        changes["speech"] = tuple(utts)
    spec = dataclasses.replace(ClipSpec(), **changes)
    if "blink_times_s" not in changes or "speech" not in changes:
        fitted = _fit(spec)
        spec = dataclasses.replace(
            spec,
            blink_times_s=spec.blink_times_s if "blink_times_s" in changes
            else fitted.blink_times_s,
            speech=spec.speech if "speech" in changes else fitted.speech,
        )
    truth = make_clip(args.out, spec)
    json_path = args.json or args.out.with_suffix(".json")
    json_path.write_text(to_json(truth))
    print(f"wrote {args.out} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
