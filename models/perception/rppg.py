"""Remote photoplethysmography: heart rate and HRV from the colour of facial skin.

Pipeline, per analysis window (``PulseEstimator.estimate``):

1. **Skin colour per frame** (``face_skin``): the face oval of the mesh minus eyes, brows,
   lips and nostrils (``facemesh.NOT_SKIN``, widened by a margin), minus pixels whose chroma
   is not skin's (glasses rims, hair of other colours, background), split into 12 regions by a
   grid in the face's own frame (``REGIONS``); mean RGB and pixel count per region. Placed by
   landmarks smoothed over time (``SkinSampler``) so that landmark jitter does not move the
   edges. ``box_means`` gives one mean for a box (the textbook set-up).
2. **Uniform resampling**: frames arrive at irregular capture times, with drops and face-less
   gaps. Samples are linearly interpolated onto a uniform ``fs_hz`` grid across gaps of up to
   ``max_gap_s``; a longer gap splits the series and the longest piece in the window is used.
   A region counts when it had skin in 90 % of the piece's frames.
3. **One skin trace** (``skin_trace``): each region's colour divided by its mean, the regions
   weighted by the inverse of their noise above the heart-rate band (see there why not by
   their in-band SNR); then what the skin shares with the scene around the face is removed
   (``rectify``). No heart rate while the head sways inside the heart-rate band by more than
   ``MAX_BAND_MOTION`` of the eye distance (``band_motion``), with the reason.
4. **Pulse signal**, three candidates on that trace (``METHODS``):

   * **POS** (Wang, den Brinker, Stuijk & de Haan, "Algorithmic principles of remote PPG",
     IEEE TBME 64(7), 2017, Algorithm 1): in sliding 1.6 s windows the trace is divided by
     its own mean, projected onto the plane orthogonal to the skin tone,
     ``S1 = G - B``, ``S2 = G + B - 2R``, combined by alpha tuning
     ``h = S1 + (std S1 / std S2) S2`` and overlap-added.
   * **CHROM** (de Haan & Jeanne, "Robust pulse rate from chrominance-based rPPG", IEEE TBME
     60(10), 2013): ``X = 3R - 2G``, ``Y = 1.5R + G - 1.5B``, ``X - (std X / std Y) Y`` per
     sliding window, Hann-weighted and overlap-added.
   * **GREEN** (Verkruysse, Svaasand & Nelson, Opt. Express 16(26), 2008): the mean-normalised
     green channel. The projections that make POS and CHROM immune to intensity changes also
     discard the pulse's own intensity component, most of it after H.264 4:2:0 compression
     quantises the fine chroma changes; GREEN keeps it, and with it every in-band intensity
     change (flicker, screen content, rhythmic motion).

   Each candidate is detrended (least squares, linear) and band-passed: a zero-phase FFT
   filter, flat on 0.7-3.5 Hz (42-210 bpm) with raised-cosine edges, on a mirror-padded copy
   so that the ends do not ring. Signs are flipped so that the maxima are blood-volume maxima
   (skin darkest). **The quality rule** (``PulseEstimator._choose``): each method has its own
   SNR threshold (``MIN_SNR_DB``: its noise scores differently); a candidate passes when it
   reaches its threshold, or when all three find the same rate within 3 bpm and none is more
   than ``AGREE_RELAX_DB`` below its threshold (chrominance and intensity seldom put noise
   peaks in one place; a weak pulse puts all three there), or, for POS, when it is at most
   ``STABLE_RELAX_DB`` below its threshold and each half of the window, on its own, peaks
   within 3 bpm of the whole window's peak (a pulse lasts the whole window; the two halves'
   noise is independent and seldom peaks in one place). The first passing candidate in
   METHODS order sets the rate; the agreeing one with the highest SNR is reported and times
   the beats. Not simply "the highest SNR wins": an in-band intensity change gives GREEN a
   high SNR at the wrong rate while POS cancels it (``tests/unit/test_rppg_behaviour.py``).
   Thresholds were chosen on generated clips, one half of them, so that no-pulse windows stay
   null; ``docs/rppg.md`` has the figures on the other half and the detection limits.
5. **Heart rate** = the largest spectral peak in 0.7-3.5 Hz of the last ``window_s`` seconds
   (at least ``min_window_s``): Hann window, FFT zero-padded to >= 8x, parabolic interpolation
   of the log power for sub-bin accuracy.
6. **Signal quality** = SNR as defined by de Haan & Jeanne ("Robust pulse rate from
   chrominance-based rPPG", IEEE TBME 60(10), 2013): power within +-0.1 Hz of the peak and of
   its first harmonic over the power in the rest of 0.7-3.5 Hz, in dB. Two consequences:
   the template is centred on the estimated (not a reference) rate, so white noise scores
   about -4 dB, and on generated no-pulse clips head motion and compression push POS to
   about +1 dB in their worst windows (hence the thresholds); and a Hann-windowed pure
   sinusoid scores only ~10 dB over 10 s (14 dB over
   12 s) because its main lobe is wider than +-0.1 Hz, so values rise with the window length.
   Below the quality rule the heart rate is withheld, with the reason.
7. **HRV**: beats are the maxima of the pulse over the last ``hrv_window_s`` seconds, band-
   passed more widely (0.6-5 Hz, soft edges: a sharp 0.7 Hz edge smooths beat-to-beat changes
   away; RMSSD came out ~20 % low with it on clean series), at least 0.6 expected periods
   apart (the heart rate is the prior: it rejects the diastolic wave and noise peaks), and
   timed to a fraction of a sample by a parabola. A beat whose waveform correlates below 0.8
   with the median beat is dropped (template-matching quality index, Li & Clifford 2012),
   and so is an interval more than 20 % off the median (Malik's rule); RMSSD uses only
   successive pairs of kept intervals (Task Force of the ESC and NASPE, Circulation 93,
   1996). Timing jitter of the beats adds ``sqrt(6) * sigma_t`` to RMSSD in quadrature;
   ``sigma_t`` is predicted as the noise slope over the pulse curvature at the peaks, the
   noise being the pulse minus its mean beat (``timing_jitter_s``). HRV is given only if:
   the SNR reaches ``hrv_min_snr_db`` (6 dB); at least ``hrv_min_intervals`` (8) intervals
   are kept and at most 20 % dropped; their median agrees with the spectral heart rate
   within 15 %; and the predicted jitter floor is at most ``hrv_max_floor_ratio`` (0.35) of
   the measured RMSSD. The predictor underestimates the jitter 2-3x at low SNR, hence the
   strict ratio. On 140 simulated 40 s series with known intervals (RMSSD 40-53 ms, 15 fps)
   and rising noise, 48 RMSSDs were reported: 47 within -14.5..+10.7 % of the truth (mean
   -5 %; SDNN within +-11 %), one +20 %. At 15 fps and webcam pulse amplitudes the floor is
   often too high (20-40 ms on ``streamer.synthetic`` clips): a null HRV then says so
   instead of reporting timing noise as variability.

Beat times are maxima of the band-passed pulse: they lag the blood-volume maxima by a
roughly constant 30-70 ms (the band-pass smooths the systolic peak towards the diastolic
wave), which cancels in the intervals.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from wellmon.models.perception import facemesh

HR_BAND_HZ = (0.7, 3.5)
HR_EDGES_HZ = (0.2, 0.5)  # raised-cosine transition widths below and above the band
# Beat timing needs a wider, softer band: the sidebands of beat-to-beat interval changes
# reach down to half the heart rate, and a sharp 0.7 Hz edge rings across neighbouring
# beats; with 0.7-3.5 Hz, RMSSD came out ~20 % low on clean synthetic series, with this ~7 %.
BEAT_BAND_HZ = (0.6, 5.0)
BEAT_EDGES_HZ = (0.3, 1.5)
# Head motion inside the heart-rate band (RMS, in eye distances; band_motion) above which no
# heart rate is given: a swaying head changes every region's colour at the sway's rate and
# its harmonics, and no rule tried on the "tune" half told those peaks from a pulse (setting
# the motion's own frequencies aside moved the peak onto their harmonics, raising the gates
# bought little). Still and slowly moving generated faces stay under 0.3 % of the eye
# distance; heavy motion (20 px at up to 1.5 Hz) reaches 4.5-7 %.
MAX_BAND_MOTION = 0.01
# Band whose colour changes are noise, not pulse (skin_trace): above 210 bpm, below the
# 7.5 Hz Nyquist frequency of 15 fps video.
NOISE_BAND_HZ = (4.0, 7.0)
NOISE_EDGES_HZ = (0.5, 0.4)
METHODS = ("pos", "chrom", "green")  # in order of precedence (PulseEstimator._choose)
# Quality gate per method (de Haan & Jeanne SNR, dB): below it the heart rate is null. Each
# method has its own noise level (GREEN keeps intensity changes that POS and CHROM cancel, so
# noise scores higher); chosen on the "tune" half of streamer.synthetic_matrix so that
# no-pulse windows stay null (see the module doc for the figures).
MIN_SNR_DB: dict[str, float] = {"pos": 1.0, "chrom": 2.0, "green": 1.0}
BEAT_METHODS = ("pos", "green")  # preferred for timing beats (PulseEstimator._choose)
# How far below their thresholds the methods may be when all of them agree on the rate.
AGREE_RELAX_DB = 5.0
# How far below its threshold POS may be when both halves of the window peak at its rate
# (PulseEstimator._holds_throughout). On the "tune" half of streamer.synthetic_matrix the
# halves of no-pulse windows agreed in 7 of 210 windows, all at -3.9 dB or less; 3 dB under
# the 1 dB gate (-2 dB) keeps a margin, and took coverage at 1 grey level from 89 to 97 %.
STABLE_RELAX_DB = 3.0
_SNR_HALF_WIDTH_HZ = 0.1  # de Haan & Jeanne's template half-width
_AGREE_HZ = 0.05  # two candidates whose peaks are this close (3 bpm) see the same pulse
# Too few pixels give a mean dominated by sensor noise.
_MIN_PIXELS = 50


# ----------------------------------------------------------------------------- skin colour


def _masked_mean(frame_bgr: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> np.ndarray | None:
    """Mean RGB of the frame pixels under `mask` (placed at x0, y0)."""
    h, w = mask.shape
    patch = np.ascontiguousarray(frame_bgr[y0:y0 + h, x0:x0 + w])
    if cv2.countNonZero(mask) < _MIN_PIXELS:
        return None
    b, g, r, _ = cv2.mean(patch, mask=mask)
    return np.array([r, g, b], np.float64)


@dataclass(frozen=True)
class SkinSample:
    """One frame's facial skin: mean RGB and pixel count per region (``REGIONS`` order), and
    the mean RGB of the scene around the face (the reference for light that is not pulse).

    A region with fewer than ``_MIN_REGION_PIXELS`` usable pixels has NaN colour.
    """

    rgb: np.ndarray  # (K, 3)
    pixels: np.ndarray  # (K,)
    background: np.ndarray | None = None  # (3,): the frame outside the face's box
    face: np.ndarray | None = None  # (3,): x, y between the eyes and the eyes' distance, px


# Regions: a grid over the face in its own frame (origin between the eye centres, x along the
# eye line, y towards the chin, unit = the distance between the eye centres). Columns split the
# face at the sides of the nose; rows at the brows, below the eyes and at the mouth corners.
# A grid rather than named polygons, so that every skin pixel of the oval belongs to exactly
# one region whatever the face's shape.
GRID_U = (-0.22, 0.22)
GRID_V = (-0.45, 0.35, 1.0)
REGIONS = tuple(f"{row}-{col}" for row in ("forehead", "eyes", "cheeks", "jaw")
                for col in ("right", "middle", "left"))
# A pixel counts as skin when its YCrCb chroma is within these bounds (Y, Cr, Cb): wide
# enough for pale to very dark skin, tight enough to drop glasses rims and grey or blue
# backgrounds. No luma bound: a pixel near a luma bound (a bright cheek near clipping, a
# shadow) crosses it with every beat, and its flipping in and out of the mean works against
# the pulse (measured on the first, cheek-only regions: SNR 6.3 dB with all pixels, -0.3 dB
# with pixels >= 250 dropped). Chroma bounds sit far from skin's chroma, which a pulse of a
# few grey levels moves by a fraction of a level.
SKIN_YCRCB_LOW = (0, 133, 70)
SKIN_YCRCB_HIGH = (255, 180, 130)
_MIN_REGION_PIXELS = 30
_MIN_REGION_COVER = 0.9  # share of a window's frames in which a region must have skin


def skin_labels(frame_bgr: np.ndarray, landmarks: np.ndarray
                ) -> tuple[int, int, np.ndarray] | None:
    """Which skin region (index into REGIONS) each pixel around the face belongs to, -1 for
    none: the face oval minus eyes, brows, lips and nostrils (facemesh.NOT_SKIN, widened by a
    margin), minus pixels outside skin colour. Returns (x0, y0, labels) with labels covering
    the face oval's bounding box from (x0, y0); None when the face is not in the frame.
    """
    pts = np.asarray(landmarks, np.float64)[:, :2]
    if not np.all(np.isfinite(pts)):
        return None
    oval = pts[list(facemesh.FACE_OVAL)]
    hgt, wid = frame_bgr.shape[:2]
    x0 = max(int(math.floor(oval[:, 0].min())), 0)
    y0 = max(int(math.floor(oval[:, 1].min())), 0)
    x1 = min(int(math.ceil(oval[:, 0].max())) + 1, wid)
    y1 = min(int(math.ceil(oval[:, 1].max())) + 1, hgt)
    right = pts[list(facemesh.RIGHT_EYE_CONTOUR)].mean(axis=0)
    left = pts[list(facemesh.LEFT_EYE_CONTOUR)].mean(axis=0)
    span = float(np.hypot(*(left - right)))
    if x1 - x0 < 8 or y1 - y0 < 8 or span < 4:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # Whole-pixel vertices: sub-pixel edges (fillPoly's `shift`) let landmark jitter into the
    # mean (measured on the first, cheek-only regions: 4-6 dB of pulse SNR).
    cv2.fillPoly(mask, [np.round(oval - (x0, y0)).astype(np.int32)], 255)
    margin = max(1, int(round(0.08 * span)))
    for part in facemesh.NOT_SKIN:
        hull = cv2.convexHull(np.round(pts[list(part)] - (x0, y0)).astype(np.int32))
        cv2.fillPoly(mask, [hull], 0)
        cv2.polylines(mask, [hull], True, 0, thickness=2 * margin)
    patch = frame_bgr[y0:y1, x0:x1]
    mask &= cv2.inRange(cv2.cvtColor(patch, cv2.COLOR_BGR2YCrCb), SKIN_YCRCB_LOW,
                        SKIN_YCRCB_HIGH)
    # The grid's cells are parallelograms in the image (the face frame is an affine map of
    # it): drawn as polygons, each filled with its label + 1.
    ex = left - right  # one span long
    ey = np.array([-ex[1], ex[0]])
    origin = (left + right) / 2 - (x0, y0)
    far = 4.0  # spans: beyond the face oval in every direction
    us, vs = (-far, *GRID_U, far), (-far, *GRID_V, far)
    cells = np.zeros(mask.shape, np.uint8)
    for row in range(len(vs) - 1):
        for col in range(len(us) - 1):
            corners = [origin + u * ex + v * ey for u, v in
                       ((us[col], vs[row]), (us[col + 1], vs[row]),
                        (us[col + 1], vs[row + 1]), (us[col], vs[row + 1]))]
            cv2.fillPoly(cells, [np.round(np.array(corners)).astype(np.int32)],
                         row * (len(us) - 1) + col + 1)
    labels = cells.astype(np.int16) - 1
    labels[mask == 0] = -1
    return x0, y0, labels


def face_skin(frame_bgr: np.ndarray, landmarks: np.ndarray) -> SkinSample | None:
    """Mean RGB and pixel count per skin region (skin_labels); None when no region has
    enough skin."""
    found = skin_labels(frame_bgr, landmarks)
    if found is None:
        return None
    x0, y0, labels = found
    keep = labels >= 0
    label = labels[keep]
    if label.size < _MIN_REGION_PIXELS:
        return None
    k = len(REGIONS)
    counts = np.bincount(label, minlength=k)
    bgr = frame_bgr[y0:y0 + labels.shape[0], x0:x0 + labels.shape[1]][keep].astype(np.float64)
    sums = np.stack([np.bincount(label, bgr[:, c], minlength=k) for c in (2, 1, 0)], axis=1)
    rgb = sums / np.maximum(counts, 1)[:, None]
    rgb[counts < _MIN_REGION_PIXELS] = np.nan
    if np.all(np.isnan(rgb[:, 0])):
        return None
    return SkinSample(rgb, counts, _background(frame_bgr, x0, y0, labels.shape),
                      _eye_line(np.asarray(landmarks, np.float64)))


def _eye_line(points: np.ndarray) -> np.ndarray:
    """[x, y] of the point between the eye centres and their distance: where the face is."""
    right = points[list(facemesh.RIGHT_EYE_CONTOUR), :2].mean(axis=0)
    left = points[list(facemesh.LEFT_EYE_CONTOUR), :2].mean(axis=0)
    return np.array([*(right + left) / 2, np.hypot(*(left - right))])


def _background(frame_bgr: np.ndarray, x0: int, y0: int, shape: tuple[int, ...]
                ) -> np.ndarray | None:
    """Mean RGB of the frame outside the face oval's box widened by a quarter on each side:
    what the camera, the light and the video codec do to the whole picture. None when the
    face leaves less than a tenth of the frame."""
    hgt, wid = frame_bgr.shape[:2]
    h, w = shape[:2]
    bx0, by0 = max(x0 - w // 4, 0), max(y0 - h // 4, 0)
    bx1, by1 = min(x0 + w + w // 4, wid), min(y0 + h + h // 4, hgt)
    rest = hgt * wid - (bx1 - bx0) * (by1 - by0)
    if rest < 0.1 * hgt * wid:
        return None
    total = np.array(cv2.sumElems(frame_bgr)[:3]) - cv2.sumElems(
        np.ascontiguousarray(frame_bgr[by0:by1, bx0:bx1]))[:3]
    return total[::-1] / rest


class SkinSampler:
    """Skin colour per frame, from landmarks smoothed over frames (exponential average).

    The landmark model jitters by a fraction of a pixel per frame; moving the regions'
    edges with it adds noise at the pulse's frequencies. Measured on the synthetic clips
    (480×360), smoothing with alpha 0.3 raised the pulse SNR by 1-2 dB. A lost face resets it.
    """

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self._smooth: np.ndarray | None = None

    def sample(self, frame_bgr: np.ndarray, landmarks: np.ndarray | None) -> SkinSample | None:
        if landmarks is None:
            self._smooth = None
            return None
        points = np.asarray(landmarks, np.float64)[:, :2]
        self._smooth = (points if self._smooth is None
                        else self.alpha * points + (1 - self.alpha) * self._smooth)
        return face_skin(frame_bgr, self._smooth)


def box_means(frame_bgr: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    """Mean [R, G, B] inside an [x, y, w, h] box (at least 50 pixels), every pixel counted."""
    x, y, w, h = (int(round(v)) for v in box)
    hgt, wid = frame_bgr.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, wid), min(y + h, hgt)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return _masked_mean(frame_bgr, np.full((y1 - y0, x1 - x0), 255, np.uint8), x0, y0)


# ----------------------------------------------------------------------------- signal steps


def _overlap_add(h: np.ndarray, n: int) -> np.ndarray:
    """Sum of sliding-window pieces h (..., n - win + 1, win) back onto (..., n)."""
    win = h.shape[-1]
    out = np.zeros(h.shape[:-2] + (n,))
    for j in range(win):  # out[k + j] += h[k, j]
        out[..., j:j + h.shape[-2]] += h[..., j]
    return out


def _windows(rgb: np.ndarray, fs_hz: float, window_s: float) -> np.ndarray | None:
    """Sliding windows of a (..., n, 3) trace, each divided by its own mean:
    (..., n - win + 1, 3, win); None if n < one window."""
    c = np.asarray(rgb, np.float64)
    win = max(2, int(round(window_s * fs_hz)))
    if c.shape[-2] < win:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(c, win, axis=-2)
    mean = frames.mean(axis=-1, keepdims=True)
    return frames / np.where(mean > 0, mean, 1.0)


def pos_pulse(rgb: np.ndarray, fs_hz: float, window_s: float = 1.6) -> np.ndarray:
    """POS pulse signal (Wang et al. 2017, Algorithm 1) of uniformly sampled (..., n, 3) RGB
    traces (one per leading index).

    Sign as in the paper: it falls when blood volume rises. Zeros if n < one window.
    """
    cn = _windows(rgb, fs_hz, window_s)
    n = np.shape(rgb)[-2]
    if cn is None:
        return np.zeros(np.shape(rgb)[:-1])
    s1 = cn[..., 1, :] - cn[..., 2, :]
    s2 = cn[..., 1, :] + cn[..., 2, :] - 2.0 * cn[..., 0, :]
    sd1, sd2 = s1.std(axis=-1, keepdims=True), s2.std(axis=-1, keepdims=True)
    h = s1 + np.divide(sd1, sd2, out=np.zeros_like(sd1), where=sd2 > 1e-12) * s2
    return _overlap_add(h - h.mean(axis=-1, keepdims=True), n)


def chrom_pulse(rgb: np.ndarray, fs_hz: float, window_s: float = 1.6) -> np.ndarray:
    """CHROM pulse signal (de Haan & Jeanne 2013) of (..., n, 3) RGB traces: per sliding
    window, X = 3R - 2G and Y = 1.5R + G - 1.5B of the mean-normalised colour, combined as
    X - (std X / std Y) Y, Hann-weighted and overlap-added. Unlike the paper, X and Y are not
    band-passed within each window (the whole pulse is band-passed afterwards), so alpha also
    sees out-of-band changes: this CHROM times beats worse than POS (PulseEstimator._choose).

    Sign: it rises when blood volume rises (the opposite of POS). Zeros if n < one window.
    """
    cn = _windows(rgb, fs_hz, window_s)
    n = np.shape(rgb)[-2]
    if cn is None:
        return np.zeros(np.shape(rgb)[:-1])
    x = 3.0 * cn[..., 0, :] - 2.0 * cn[..., 1, :]
    y = 1.5 * cn[..., 0, :] + cn[..., 1, :] - 1.5 * cn[..., 2, :]
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    sx, sy = x.std(axis=-1, keepdims=True), y.std(axis=-1, keepdims=True)
    h = x - np.divide(sx, sy, out=np.zeros_like(sx), where=sy > 1e-12) * y
    return _overlap_add(h * np.hanning(h.shape[-1]), n)


def green_pulse(rgb: np.ndarray) -> np.ndarray:
    """GREEN (Verkruysse et al. 2008): the mean-normalised green channel of (..., n, 3)
    traces. It falls when blood volume rises."""
    g = np.asarray(rgb, np.float64)[..., 1]
    mean = g.mean(axis=-1, keepdims=True)
    return g / np.where(mean > 0, mean, 1.0)


def bandpass(x: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = HR_BAND_HZ,
             edges_hz: tuple[float, float] = HR_EDGES_HZ) -> np.ndarray:
    """Linear detrend, then zero-phase FFT band-pass along the last axis: gain 1 on the band,
    raised-cosine edges of the given widths below and above it."""
    x = np.asarray(x, np.float64)
    n = x.shape[-1]
    if n < 4:
        return np.zeros(x.shape)
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2
    slope = (x @ t) / (t @ t)
    x = x - x.mean(axis=-1, keepdims=True) - slope[..., None] * t
    pad = min(n - 1, int(round(2.0 * fs_hz)))
    xp = np.concatenate([x[..., pad:0:-1], x, x[..., -2:-pad - 2:-1]], axis=-1)
    m = xp.shape[-1]
    spec = np.fft.rfft(xp, axis=-1)
    spec *= _band_gain(np.fft.rfftfreq(m, 1.0 / fs_hz), band_hz, edges_hz)
    return np.fft.irfft(spec, m, axis=-1)[..., pad:pad + n]


def _band_gain(f: np.ndarray, band_hz: tuple[float, float], edges_hz: tuple[float, float]
               ) -> np.ndarray:
    lo, hi = band_hz
    wl, wh = edges_hz
    g = ((f >= lo) & (f <= hi)).astype(np.float64)
    rise = (f > lo - wl) & (f < lo)
    g[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - (lo - wl)) / wl)
    fall = (f > hi) & (f < hi + wh)
    g[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - hi) / wh)
    return g


def _spectra(x: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, Hann-windowed power along the last axis, zero-padded to >= 8x)."""
    n = x.shape[-1]
    nfft = max(4096, 1 << int(math.ceil(math.log2(8 * n))))
    xc = x - x.mean(axis=-1, keepdims=True)
    return (np.fft.rfftfreq(nfft, 1.0 / fs_hz),
            np.abs(np.fft.rfft(xc * np.hanning(n), nfft, axis=-1)) ** 2)


def _snr_db(f: np.ndarray, p: np.ndarray, f0: float,
            band_hz: tuple[float, float] = HR_BAND_HZ) -> np.ndarray:
    """de Haan & Jeanne SNR (dB) of power spectra p (..., nf) at the rate f0: power within
    +-0.1 Hz of f0 and 2 f0 over the power in the rest of the band."""
    band = (f >= band_hz[0]) & (f <= band_hz[1])
    sig = band & ((np.abs(f - f0) <= _SNR_HALF_WIDTH_HZ)
                  | (np.abs(f - 2 * f0) <= _SNR_HALF_WIDTH_HZ))
    ps, pn = p[..., sig].sum(axis=-1), p[..., band & ~sig].sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(ps / pn)


def _peak_hz(f: np.ndarray, p: np.ndarray, band_hz: tuple[float, float] = HR_BAND_HZ) -> float:
    """Largest peak of one power spectrum within the band, refined by a parabola through the
    log power (sub-bin accuracy)."""
    idx = np.flatnonzero((f >= band_hz[0]) & (f <= band_hz[1]))
    k = int(idx[np.argmax(p[idx])])
    f0 = float(f[k])
    if idx[0] < k < idx[-1]:
        a, b, c = np.log(p[k - 1:k + 2] + 1e-300)
        den = a - 2 * b + c
        if den < 0:
            f0 += float(0.5 * (a - c) / den) * float(f[1] - f[0])
    return f0


def spectral_peak(x: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = HR_BAND_HZ
                  ) -> tuple[float, float]:
    """(peak frequency in Hz, de Haan & Jeanne SNR in dB) of x within the band."""
    f, p = _spectra(np.asarray(x, np.float64), fs_hz)
    f0 = _peak_hz(f, p, band_hz)
    snr = float(_snr_db(f, p, f0, band_hz))
    return f0, (snr if not math.isnan(snr) else -math.inf)


def skin_trace(rgb: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """One colour trace (n, 3) from the traces of several skin regions (K, n, 3), each
    divided by its own mean and weighted by the inverse of its noise: (trace, weights).

    The noise of a region is the variance of its normalised colour in 4-7 Hz, above any
    heart rate: sensor and compression noise (which falls with the region's pixel count),
    a glasses rim or hair edge sliding through it, glare. With equal pulse strength
    everywhere, inverse-noise weights maximise the pulse's SNR (maximum-ratio combining).
    Why not weight by each region's SNR in the heart-rate band, as pyVHR's multi-patch
    methods do: weights picked on the very spectrum that is then judged select noise that
    happens to look periodic. Measured on generated clips, that raised the SNR of no-pulse
    windows (90th percentile) from -3.6 to +1.6 dB, above real pulses of 1 grey level.
    """
    x = np.asarray(rgb, np.float64)
    mean = x.mean(axis=1, keepdims=True)
    c = x / np.where(mean > 0, mean, 1.0)
    if c.shape[0] == 1:
        return c[0], np.ones(1)
    hf = bandpass(np.moveaxis(c, 2, 1), fs_hz, NOISE_BAND_HZ, NOISE_EDGES_HZ)  # (K, 3, n)
    noise = hf.var(axis=2).sum(axis=1)
    weights = np.divide(1.0, noise, out=np.zeros_like(noise), where=noise > 0)
    if not weights.sum() > 0:
        weights = np.ones(c.shape[0])
    weights = weights / weights.sum()
    return np.tensordot(weights, c, axes=1), weights


def band_motion(face: np.ndarray, fs_hz: float) -> float:
    """RMS movement of the face within the heart-rate band: its position (x, y between the
    eyes) in eye distances and its scale (log eye distance), combined."""
    pos = np.asarray(face, np.float64)
    span = float(np.median(pos[:, 2]))
    if span <= 0:
        return math.inf
    motion = np.stack([pos[:, 0] / span, pos[:, 1] / span, np.log(pos[:, 2] / span)])
    return float(np.sqrt(np.mean(bandpass(motion, fs_hz) ** 2, axis=1).sum()))


def rectify(trace: np.ndarray, background: np.ndarray, fs_hz: float) -> np.ndarray:
    """The skin trace (n, 3) minus what it shares with the scene around the face (n, 3),
    per channel: least squares on the heart-rate band, so that only the common part goes.

    Illumination rectification after Li, Chen, Zhao & Pietikäinen ("Remote heart rate
    measurement from face videos under realistic situations", CVPR 2014), who remove the
    background's colour change from the face's: flicker, automatic exposure and the video
    codec change both, the pulse only the skin. Measured on a generated clip of a still
    face with no pulse, no noise and no motion (H.264 crf 20), the encoder's own
    fluctuation made a "pulse" of 82 bpm at 13.5 dB SNR in GREEN and its harmonic at
    10.6 dB in POS; the background shows the same fluctuation.
    """
    x = np.asarray(trace, np.float64)
    mean = background.mean(axis=0, keepdims=True)
    bg = background / np.where(mean > 0, mean, 1.0) - 1.0
    xs, bs = bandpass(x.T, fs_hz), bandpass(bg.T, fs_hz)  # (3, n)
    power = np.einsum("ij,ij->i", bs, bs)
    beta = np.divide(np.einsum("ij,ij->i", xs, bs), power, out=np.zeros(3), where=power > 0)
    return x - bg * beta


def beat_times(pulse: np.ndarray, t: np.ndarray, hr_hz: float) -> np.ndarray:
    """Times of the maxima of a band-passed pulse, with the heart rate as prior.

    Positive local maxima are taken tallest first, each at least 0.6 expected periods from
    those already taken; one below a quarter of the median taken height is dropped. Each time
    is refined by a parabola through the sample and its two neighbours.
    """
    x = np.asarray(pulse, np.float64)
    if x.size < 3:
        return np.empty(0)
    dt = float(t[1] - t[0])
    cand = np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])) + 1
    cand = cand[x[cand] > 0]
    min_sep = 0.6 / hr_hz / dt  # in samples
    taken: list[int] = []
    for i in cand[np.argsort(-x[cand], kind="stable")]:
        if all(abs(int(i) - j) >= min_sep for j in taken):
            taken.append(int(i))
    if not taken:
        return np.empty(0)
    idx = np.array(sorted(taken))
    idx = idx[x[idx] >= 0.25 * np.median(x[idx])]
    a, b, c = x[idx - 1], x[idx], x[idx + 1]
    den = a - 2 * b + c
    off = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    return t[idx] + np.clip(off, -0.5, 0.5) * dt


def timing_jitter_s(pulse: np.ndarray, t: np.ndarray, beats_s: np.ndarray,
                    n_phase: int = 40) -> float:
    """Predicted standard deviation of the beat times caused by noise.

    A maximum moves by n'(t) / |x''(t)| when noise n is added to the pulse x. The noise is what
    is left after subtracting the mean beat (x averaged over beat phase, each interval mapped
    to [0, 1)), so that genuine interval variation does not count as noise; x'' is the median
    curvature at the beats.
    """
    x = np.asarray(pulse, np.float64)
    b = np.asarray(beats_s, np.float64)
    dt = float(t[1] - t[0])
    if b.size < 3:
        return math.inf
    k = np.searchsorted(b, t, side="right") - 1
    inside = (k >= 0) & (k < b.size - 1)
    if np.count_nonzero(inside) < 2 * n_phase:
        return math.inf
    ki = k[inside]
    phase = (t[inside] - b[ki]) / (b[ki + 1] - b[ki])
    bins = np.minimum((phase * n_phase).astype(int), n_phase - 1)
    counts = np.bincount(bins, minlength=n_phase)
    mean_beat = np.bincount(bins, x[inside], n_phase) / np.maximum(counts, 1)
    centres = (np.arange(n_phase) + 0.5) / n_phase
    wrap_x = np.concatenate([centres - 1, centres, centres + 1])
    recon = np.interp(phase, wrap_x, np.tile(mean_beat, 3))
    sd_deriv = float(np.std(np.gradient(x[inside] - recon, dt)))
    idx = np.round((b - t[0]) / dt).astype(int)
    idx = idx[(idx > 0) & (idx < x.size - 1)]
    curv = float(np.median(np.abs(x[idx - 1] - 2 * x[idx] + x[idx + 1]))) / dt ** 2
    return sd_deriv / curv if curv > 0 else math.inf


def beat_correlations(pulse: np.ndarray, t: np.ndarray, beats_s: np.ndarray) -> np.ndarray:
    """Pearson correlation of each beat (-0.4 to +0.6 median intervals around it) with the
    median beat: the template-matching signal quality index of Li & Clifford (Physiol. Meas.
    33(9), 2012). A noise peak taken for a beat, or a beat bent by motion, scores low.
    NaN where the beat's window does not fit in the signal."""
    x = np.asarray(pulse, np.float64)
    b = np.asarray(beats_s, np.float64)
    out = np.full(b.size, np.nan)
    if b.size < 3:
        return out
    dt = float(t[1] - t[0])
    ibi = float(np.median(np.diff(b)))
    before, after = int(round(0.4 * ibi / dt)), int(round(0.6 * ibi / dt))
    idx = np.round((b - t[0]) / dt).astype(int)
    fits = (idx - before >= 0) & (idx + after < x.size)
    if np.count_nonzero(fits) < 3:
        return out
    segs = np.array([x[i - before:i + after + 1] for i in idx[fits]])
    segs = segs - segs.mean(axis=1, keepdims=True)
    tpl = np.median(segs, axis=0)
    tpl -= tpl.mean()
    den = np.linalg.norm(segs, axis=1) * np.linalg.norm(tpl)
    out[fits] = np.divide(segs @ tpl, den, out=np.zeros(len(segs)), where=den > 0)
    return out


@dataclass(frozen=True)
class HrvResult:
    """RMSSD and SDNN (ms) of the accepted inter-beat intervals."""

    rmssd_ms: float | None
    sdnn_ms: float | None
    median_ibi_s: float | None
    n_intervals: int  # accepted intervals
    n_rejected: int


def hrv_from_beats(beats_s: Sequence[float] | np.ndarray, good: np.ndarray | None = None,
                   max_dev: float = 0.2) -> HrvResult:
    """RMSSD over successive pairs of accepted intervals, SDNN over accepted intervals.

    An interval is accepted when both its beats are `good` (all by default) and it is within
    `max_dev` of the median of such intervals (Malik's 20 % rule, relative to the median):
    a missed beat doubles an interval and a false one splits it, and neither may leak in.
    """
    b = np.asarray(beats_s, np.float64)
    ibi = np.diff(b)
    if ibi.size == 0:
        return HrvResult(None, None, None, 0, 0)
    g = np.ones(b.size, bool) if good is None else np.asarray(good, bool)
    ok = g[1:] & g[:-1]
    if not ok.any():
        return HrvResult(None, None, None, 0, int(ibi.size))
    med = float(np.median(ibi[ok]))
    ok &= np.abs(ibi - med) <= max_dev * med
    good_ibi = ibi[ok]
    succ = np.diff(ibi)[ok[1:] & ok[:-1]]
    rmssd = float(np.sqrt(np.mean(succ ** 2)) * 1000) if succ.size else None
    sdnn = float(np.std(good_ibi, ddof=1) * 1000) if good_ibi.size >= 2 else None
    return HrvResult(rmssd, sdnn, med, int(ok.sum()), int((~ok).sum()))


# ----------------------------------------------------------------------------- estimator


@dataclass(frozen=True)
class PulseEstimate:
    """One window's pulse measures. A None value comes with its reason, never a guess."""

    t_end_s: float
    heart_rate_bpm: float | None
    hrv_rmssd_ms: float | None
    hrv_sdnn_ms: float | None
    quality: float | None  # de Haan & Jeanne SNR (dB) of the heart-rate window
    reason: str | None  # why heart_rate_bpm is None
    hrv_reason: str | None  # why the HRV values are None
    window_s: float = 0.0  # seconds of signal behind heart_rate_bpm
    method: str | None = None  # "pos", "chrom" or "green": the candidate used (module doc)
    hrv_floor_ms: float | None = None  # predicted RMSSD of beat-timing noise alone
    beat_times_s: tuple[float, ...] = field(default=(), repr=False)  # beats behind the HRV


@dataclass(frozen=True)
class _Segment:
    t: np.ndarray  # uniform grid, seconds
    trace: np.ndarray  # (n, 3): the regions' normalised colour combined (skin_trace)
    span_s: float
    motion: float | None  # head motion in the heart-rate band (band_motion), None: unknown


class PulseEstimator:
    """Streaming rPPG: insert each frame's skin colour, ask for an estimate at any time.

    Memory is bounded: samples older than ``hrv_window_s`` (+2 s) before the newest are
    dropped. ``estimate`` does not change the state, so it can be called at any hop.
    """

    def __init__(self, *, fs_hz: float = 30.0, window_s: float = 20.0,
                 min_window_s: float = 10.0, hrv_window_s: float = 30.0,
                 pos_window_s: float = 1.6, max_gap_s: float = 0.5,
                 min_snr_db: Mapping[str, float] | None = None, snr_margin_db: float = 0.0,
                 hrv_min_snr_db: float = 6.0, agree_relax_db: float = AGREE_RELAX_DB,
                 stable_relax_db: float = STABLE_RELAX_DB,
                 hrv_min_intervals: int = 8, hrv_max_floor_ratio: float = 0.35,
                 hrv_min_beat_corr: float = 0.8,
                 methods: Sequence[str] = METHODS) -> None:
        if min_window_s > window_s:
            raise ValueError("min_window_s must not exceed window_s")
        if not methods or set(methods) - set(METHODS):
            raise ValueError(f"methods must be a non-empty subset of {METHODS}")
        self.fs_hz = fs_hz
        self.window_s = window_s
        self.min_window_s = min_window_s
        self.hrv_window_s = max(hrv_window_s, window_s)
        self.pos_window_s = pos_window_s
        self.max_gap_s = max_gap_s
        thresholds = MIN_SNR_DB if min_snr_db is None else min_snr_db
        self.min_snr_db = {m: thresholds[m] + snr_margin_db for m in methods}
        self.hrv_min_snr_db = hrv_min_snr_db
        self.agree_relax_db = agree_relax_db
        self.stable_relax_db = stable_relax_db
        self.hrv_min_intervals = hrv_min_intervals
        self.hrv_max_floor_ratio = hrv_max_floor_ratio
        self.hrv_min_beat_corr = hrv_min_beat_corr
        self.methods = tuple(methods)
        self._t: deque[float] = deque()
        self._rgb: deque[np.ndarray | None] = deque()  # (K, 3) per frame, NaN: no skin
        self._background: deque[np.ndarray | None] = deque()  # (3,) per frame
        self._face: deque[np.ndarray | None] = deque()  # (3,) per frame: SkinSample.face

    def insert(self, t_s: float, skin: SkinSample | np.ndarray | None) -> None:
        """Add one frame's skin colour: a SkinSample (several regions) or one [R, G, B] mean;
        None means no face or no usable skin in that frame.

        A sample not later than the previous one is ignored; so is one whose number of
        regions differs from the previous frame's (another sampler needs another estimator).
        """
        if self._t and t_s <= self._t[-1]:
            return
        value = None
        if skin is not None:
            rgb = skin.rgb if isinstance(skin, SkinSample) else skin
            value = np.asarray(rgb, np.float64).reshape(-1, 3).copy()
            value[~np.all(np.isfinite(value) & (value > 0), axis=1)] = np.nan
            if np.all(np.isnan(value)):
                value = None
        if value is not None and self._rgb:
            last = next((v for v in reversed(self._rgb) if v is not None), None)
            if last is not None and last.shape != value.shape:
                return
        background = None
        if value is not None and isinstance(skin, SkinSample) and skin.background is not None:
            background = np.asarray(skin.background, np.float64).reshape(3)
            if not np.all(np.isfinite(background) & (background > 0)):
                background = None
        face = None
        if value is not None and isinstance(skin, SkinSample) and skin.face is not None:
            face = np.asarray(skin.face, np.float64).reshape(3)
            if not (np.all(np.isfinite(face)) and face[2] > 0):
                face = None
        self._t.append(float(t_s))
        self._rgb.append(value)
        self._background.append(background)
        self._face.append(face)
        horizon = t_s - self.hrv_window_s - 2.0
        while self._t[0] < horizon:
            self._t.popleft()
            self._rgb.popleft()
            self._background.popleft()
            self._face.popleft()

    def estimate(self, t_end_s: float) -> PulseEstimate:
        """Heart rate, HRV and signal quality from the samples in (t_end_s - window, t_end_s]."""
        t_end_s = float(t_end_s)
        seg = self._segment(t_end_s, self.window_s)
        if isinstance(seg, str):
            return PulseEstimate(t_end_s, None, None, None, None, seg, "no heart rate")
        if seg.motion is not None and seg.motion > MAX_BAND_MOTION:
            why = (f"the head moves too much for a pulse ({100 * seg.motion:.1f} % of the eye "
                   f"distance in the heart-rate band, at most {100 * MAX_BAND_MOTION:g} %)")
            return PulseEstimate(t_end_s, None, None, None, None, why, "no heart rate",
                                 seg.span_s)
        cands = [(m, *spectral_peak(self._pulse(seg, m), self.fs_hz)) for m in self.methods]
        method, f0, snr, passed = self._choose(cands)
        if not passed:
            steady = next((c for c in cands if c[0] == "pos"
                           and c[2] >= self.min_snr_db["pos"] - self.stable_relax_db
                           and self._holds_throughout(seg, "pos", c[1])), None)
            if steady is not None:
                method, f0, snr, passed = (*steady, True)
        quality = round(snr, 2) if math.isfinite(snr) else None
        gate = self.min_snr_db[method]
        if not passed:
            reason = (f"signal quality {quality:.1f} dB below threshold {gate:g} dB "
                      f"({method}), and neither the methods nor the window's halves "
                      f"agree" if quality is not None
                      else "no pulse signal")
            return PulseEstimate(t_end_s, None, None, None, quality, reason, "no heart rate",
                                 seg.span_s, method)
        hr_bpm = round(60.0 * f0, 2)
        if snr < self.hrv_min_snr_db:
            why = (f"signal quality {snr:.1f} dB below HRV threshold "
                   f"{self.hrv_min_snr_db:g} dB ({method})")
            return PulseEstimate(t_end_s, hr_bpm, None, None, quality, None, why,
                                 seg.span_s, method)
        long_seg = self._segment(t_end_s, self.hrv_window_s)
        if isinstance(long_seg, str) or long_seg.span_s < seg.span_s:
            long_seg = seg
        pulse = self._pulse(long_seg, method, beats=True)
        beats = beat_times(pulse, long_seg.t, f0)
        corr = beat_correlations(pulse, long_seg.t, beats)
        res = hrv_from_beats(beats, ~(corr < self.hrv_min_beat_corr))  # NaN: at an edge
        floor = math.sqrt(6.0) * timing_jitter_s(pulse, long_seg.t, beats) * 1000
        floor_ms = round(floor, 1) if math.isfinite(floor) else None
        rmssd, sdnn = res.rmssd_ms, res.sdnn_ms
        total = res.n_intervals + res.n_rejected
        why = None
        if res.n_intervals < self.hrv_min_intervals or rmssd is None or sdnn is None:
            why = f"too few clean beat intervals ({res.n_intervals} < {self.hrv_min_intervals})"
        elif res.n_rejected > 0.2 * total:
            why = f"irregular beat detection ({res.n_rejected} of {total} intervals dropped)"
        elif abs(60.0 / (res.median_ibi_s or math.inf) - 60.0 * f0) > 0.15 * 60.0 * f0:
            why = "beat intervals disagree with the spectral heart rate"
        elif not floor <= self.hrv_max_floor_ratio * rmssd:
            why = (f"beat timing too noisy (jitter alone gives {floor:.0f} ms RMSSD, more than "
                   f"{self.hrv_max_floor_ratio:g} x the measured {rmssd:.0f} ms)")
        beat_list = tuple(round(float(b), 4) for b in beats)
        if why is not None or rmssd is None or sdnn is None:
            return PulseEstimate(t_end_s, hr_bpm, None, None, quality, None, why, seg.span_s,
                                 method, floor_ms, beat_list)
        return PulseEstimate(t_end_s, hr_bpm, round(rmssd, 1), round(sdnn, 1), quality, None,
                             None, seg.span_s, method, floor_ms, beat_list)

    # --------------------------------------------------------------------------- internals

    def _choose(self, cands: list[tuple[str, float, float]]
                ) -> tuple[str, float, float, bool]:
        """The method whose heart rate is used, its peak and SNR, and whether it passes.

        A candidate passes when its SNR reaches its method's threshold, or when every method
        finds the same rate (within 3 bpm) and none is more than ``agree_relax_db`` below its
        threshold: POS and CHROM look at the skin's chrominance, GREEN at its intensity, so
        noise seldom puts all three peaks in one place, while a weak pulse does. The first
        passing candidate in METHODS order sets the rate; of the passing candidates that
        agree with it, the one with the highest SNR is used (and times the beats), CHROM
        only when neither POS nor GREEN passes: its beats come out noisier (as implemented
        here, without a band-pass before its alpha tuning); if none passes, the one closest
        to passing (its SNR is the quality shown)."""
        def margin(c: tuple[str, float, float]) -> float:
            return c[2] - self.min_snr_db[c[0]]

        unanimous = len(cands) >= 3 and all(
            abs(c[1] - cands[0][1]) <= _AGREE_HZ and margin(c) >= -self.agree_relax_db
            for c in cands)
        passing = [c for c in cands if unanimous or margin(c) >= 0]
        if not passing:
            return (*max(cands, key=margin), False)
        first = passing[0]
        same = [c for c in passing if abs(c[1] - first[1]) <= _AGREE_HZ]
        timed = [c for c in same if c[0] in BEAT_METHODS] or same
        return (*max(timed, key=lambda c: c[2]), True)

    def _holds_throughout(self, seg: _Segment, method: str, f0: float) -> bool:
        """Whether each half of the segment, on its own, peaks within 3 bpm of f0."""
        half = seg.t.size // 2
        for part in (slice(0, half), slice(half, None)):
            t = seg.t[part]
            piece = _Segment(t, seg.trace[part], float(t[-1] - t[0]), seg.motion)
            if abs(spectral_peak(self._pulse(piece, method), self.fs_hz)[0] - f0) > _AGREE_HZ:
                return False
        return True

    def _segment(self, t_end_s: float, length_s: float) -> _Segment | str:
        """Longest gap-free piece of the last length_s seconds, resampled; else the reason."""
        ts = np.fromiter(self._t, np.float64, len(self._t))
        sel = np.flatnonzero((ts > t_end_s - length_s) & (ts <= t_end_s))
        if sel.size == 0:
            return "no data"
        rgbs = list(self._rgb)
        vals = [rgbs[i] for i in sel]
        keep = [i for i, v in zip(sel, vals) if v is not None]
        if not keep:
            return "no face"
        tv = ts[keep]
        cv = np.stack([v for v in vals if v is not None], axis=1)  # (K, frames, 3)
        step = float(np.median(np.diff(tv))) if tv.size > 1 else 0.0
        cuts = np.flatnonzero(np.diff(tv) > max(self.max_gap_s, 1.5 * step)) + 1
        bounds = np.concatenate([[0], cuts, [tv.size]]).astype(int)
        spans = [float(tv[b - 1] - tv[a]) + step for a, b in zip(bounds[:-1], bounds[1:])]
        k = int(np.argmax(spans))
        a, b, span = int(bounds[k]), int(bounds[k + 1]), spans[k]
        if span < self.min_window_s - 1e-6 or b - a < 4:
            return f"not enough data ({span:.1f} s < {self.min_window_s:g} s)"
        # A region counts when it had skin in nearly every frame of the piece (a rim or a
        # hand over it for a moment is bridged); its other frames are interpolated.
        seen = ~np.isnan(cv[:, a:b, 0])
        regions = np.flatnonzero(seen.mean(axis=1) >= _MIN_REGION_COVER)
        if regions.size == 0:
            return "no skin region seen throughout the window"
        n = int(math.floor((tv[b - 1] - tv[a]) * self.fs_hz)) + 1
        grid = tv[b - 1] - np.arange(n)[::-1] / self.fs_hz
        rgb = np.empty((regions.size, n, 3))
        for i, r in enumerate(regions):
            ok = seen[r]
            for c in range(3):
                rgb[i, :, c] = np.interp(grid, tv[a:b][ok], cv[r, a:b, c][ok])
        trace, _ = skin_trace(rgb, self.fs_hz)
        frames = np.asarray(keep)[a:b]
        scene = self._resampled(self._background, frames, tv[a:b], grid)
        if scene is not None:
            trace = rectify(trace, scene, self.fs_hz)
        face = self._resampled(self._face, frames, tv[a:b], grid)
        motion = None if face is None else band_motion(face, self.fs_hz)
        return _Segment(grid, trace, span, motion)

    @staticmethod
    def _resampled(values: deque[np.ndarray | None], frames: np.ndarray, t: np.ndarray,
                   grid: np.ndarray) -> np.ndarray | None:
        """A per-frame (3,) series on the grid, or None when any frame lacks it."""
        kept = [values[i] for i in frames]
        if any(v is None for v in kept):
            return None
        series = np.array(kept)
        return np.stack([np.interp(grid, t, series[:, c]) for c in range(3)], axis=1)

    def _pulse(self, seg: _Segment, method: str, beats: bool = False) -> np.ndarray:
        """Band-passed pulse of a segment's skin (skin_trace), oriented so that maxima are
        blood-volume maxima."""
        trace = seg.trace[None]
        if method == "pos":
            raw = -pos_pulse(trace, self.fs_hz, self.pos_window_s)[0]
        elif method == "chrom":
            raw = chrom_pulse(trace, self.fs_hz, self.pos_window_s)[0]
        else:
            raw = -green_pulse(trace)[0]
        if beats:
            return bandpass(raw, self.fs_hz, BEAT_BAND_HZ, BEAT_EDGES_HZ)
        return bandpass(raw, self.fs_hz)
