"""Remote photoplethysmography: heart rate and HRV from the colour of facial skin.

Pipeline, per analysis window (``PulseEstimator.estimate``):

1. **Skin colour per frame** (``skin_means``): mean RGB over the skin regions of the face
   mesh (both medial cheeks, ``facemesh.SKIN_POLYGONS``), placed by landmarks smoothed over
   time (``SkinSampler``) so that landmark jitter does not move their edges.
   ``box_means`` does the same for a box.
2. **Uniform resampling**: frames arrive at irregular capture times, with drops and face-less
   gaps. Samples are linearly interpolated onto a uniform ``fs_hz`` grid across gaps of up to
   ``max_gap_s``; a longer gap splits the series and the longest piece in the window is used.
3. **Pulse signal**, two candidates:

   * **POS** (Wang, den Brinker, Stuijk & de Haan, "Algorithmic principles of remote PPG",
     IEEE TBME 64(7), 2017, Algorithm 1): in sliding 1.6 s windows the RGB trace is divided by
     its own mean (removing skin tone and slow multiplicative illumination/motion trends: the
     detrending of the colour channels), projected onto the plane orthogonal to the skin tone,
     ``S1 = G - B``, ``S2 = G + B - 2R``, combined by alpha tuning
     ``h = S1 + (std S1 / std S2) S2`` and overlap-added. POS rather than CHROM (de Haan &
     Jeanne 2013): both project onto that plane, but POS assumes no standardised skin tone
     or light colour and was the more robust under motion in Wang et al.'s benchmark.
   * **GREEN** (Verkruysse, Svaasand & Nelson, Opt. Express 16(26), 2008): the mean-normalised
     green channel. The projection that makes POS immune to intensity changes also discards
     the pulse's own intensity component, which is most of it (with Wang's blood-volume
     signature [0.33, 0.77, 0.53] only about a third of the pulse is orthogonal to the skin
     tone). After H.264/JPEG 4:2:0 compression even less is left, because the fine chroma
     changes are quantised away: on ``streamer.synthetic`` clips (crf 18) POS reaches only
     ~1 dB at 95-120 bpm where GREEN reaches 7-10 dB. Under strong intensity distortions the
     opposite holds.

   Each candidate is detrended (least squares, linear) and band-passed: a zero-phase FFT
   filter, flat on 0.7-3.5 Hz (42-210 bpm) with raised-cosine edges, on a mirror-padded copy
   so that the ends do not ring. (Filtering the one pulse signal after the projection is
   equivalent to filtering R, G and B before it, and cheaper.) Signs are flipped so that the
   maxima are blood-volume maxima (skin darkest). Which candidate is used
   (``PulseEstimate.method``): POS if its SNR passes the threshold, GREEN if only GREEN's
   does; if both pass and their peaks agree within 3 bpm they see the same pulse and the one
   with the higher SNR is used (also for the beats); if they disagree, POS. Not simply "the
   higher SNR wins": the SNR measures periodicity, not pulsatility, and an in-band periodic
   intensity change (flicker, screen content, rhythmic motion) gives GREEN a high SNR at the
   wrong rate while POS cancels it (``tests/test_rppg_behaviour.py`` has such a case).
4. **Heart rate** = the largest spectral peak in 0.7-3.5 Hz of the last ``window_s`` seconds
   (at least ``min_window_s``): Hann window, FFT zero-padded to >= 8x, parabolic interpolation
   of the log power for sub-bin accuracy.
5. **Signal quality** = SNR as defined by de Haan & Jeanne ("Robust pulse rate from
   chrominance-based rPPG", IEEE TBME 60(10), 2013): power within +-0.1 Hz of the peak and of
   its first harmonic over the power in the rest of 0.7-3.5 Hz, in dB. Two consequences:
   the template is centred on the estimated (not a reference) rate, so pure noise scores
   about -4 dB (at most +1.7 dB in 900 simulated noise-only windows with the best of the two
   candidates); and a Hann-windowed pure sinusoid scores only ~10 dB over 10 s (14 dB over
   12 s) because its main lobe is wider than +-0.1 Hz, so values rise with the window length.
   Below ``min_snr_db`` (3 dB) the heart rate is withheld, with the reason.
6. **HRV**: beats are the maxima of the pulse over the last ``hrv_window_s`` seconds, band-
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
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from models import facemesh

HR_BAND_HZ = (0.7, 3.5)
HR_EDGES_HZ = (0.2, 0.5)  # raised-cosine transition widths below and above the band
# Beat timing needs a wider, softer band: the sidebands of beat-to-beat interval changes
# reach down to half the heart rate, and a sharp 0.7 Hz edge rings across neighbouring
# beats; with 0.7-3.5 Hz, RMSSD came out ~20 % low on clean synthetic series, with this ~7 %.
BEAT_BAND_HZ = (0.6, 5.0)
BEAT_EDGES_HZ = (0.3, 1.5)
METHODS = ("pos", "green")
_SNR_HALF_WIDTH_HZ = 0.1  # de Haan & Jeanne's template half-width
_AGREE_HZ = 0.05  # two candidates whose peaks are this close (3 bpm) see the same pulse
# Too few pixels give a mean dominated by sensor noise.
_MIN_PIXELS = 50


# ----------------------------------------------------------------------------- skin colour


def _masked_mean(frame_bgr: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> np.ndarray | None:
    """Mean RGB of the frame pixels under `mask` (placed at x0, y0).

    No per-pixel exclusion (clipped or dark pixels): measured on the synthetic clips, bright
    cheek pixels that cross a clipping threshold with each pulse flip in and out of the mean
    and drowned the pulse (SNR 6.3 dB with all pixels, -0.3 dB with pixels ≥ 250 dropped).
    """
    h, w = mask.shape
    patch = np.ascontiguousarray(frame_bgr[y0:y0 + h, x0:x0 + w])
    if cv2.countNonZero(mask) < _MIN_PIXELS:
        return None
    b, g, r, _ = cv2.mean(patch, mask=mask)
    return np.array([r, g, b], np.float64)


def skin_means(frame_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """Mean [R, G, B] over the skin regions of the face mesh (facemesh.SKIN_POLYGONS).

    `landmarks` is the (468, 2 or 3) face-mesh output in frame pixels. Returns None when the
    polygons fall outside the frame or fewer than 50 usable skin pixels remain.
    """
    pts = np.asarray(landmarks, np.float64)[:, :2]
    polys = [cv2.convexHull(pts[list(p)].astype(np.float32)).reshape(-1, 2).astype(np.float64)
             for p in facemesh.SKIN_POLYGONS]
    allp = np.concatenate(polys)
    if not np.all(np.isfinite(allp)):
        return None
    hgt, wid = frame_bgr.shape[:2]
    x0 = max(int(math.floor(allp[:, 0].min())), 0)
    y0 = max(int(math.floor(allp[:, 1].min())), 0)
    x1 = min(int(math.ceil(allp[:, 0].max())) + 1, wid)
    y1 = min(int(math.ceil(allp[:, 1].max())) + 1, hgt)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # Whole-pixel vertices: measured on the synthetic clips, sub-pixel edges (fillPoly's
    # `shift`) let landmark jitter into the mean and cost 4-6 dB of pulse SNR.
    cv2.fillPoly(mask, [np.round(p - (x0, y0)).astype(np.int32) for p in polys], 255)
    return _masked_mean(frame_bgr, mask, x0, y0)


class SkinSampler:
    """Skin colour per frame, from landmarks smoothed over frames (exponential average).

    The landmark model jitters by a fraction of a pixel per frame; moving the regions'
    edges with it adds noise at the pulse's frequencies. Measured on the synthetic clips
    (480×360), smoothing with alpha 0.3 raised the pulse SNR by 1-2 dB. A lost face resets it.
    """

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self._smooth: np.ndarray | None = None

    def sample(self, frame_bgr: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray | None:
        if landmarks is None:
            self._smooth = None
            return None
        points = np.asarray(landmarks, np.float64)[:, :2]
        self._smooth = (points if self._smooth is None
                        else self.alpha * points + (1 - self.alpha) * self._smooth)
        return skin_means(frame_bgr, self._smooth)


def box_means(frame_bgr: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    """Mean [R, G, B] inside an [x, y, w, h] box, with the same pixel rules as skin_means."""
    x, y, w, h = (int(round(v)) for v in box)
    hgt, wid = frame_bgr.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, wid), min(y + h, hgt)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return _masked_mean(frame_bgr, np.full((y1 - y0, x1 - x0), 255, np.uint8), x0, y0)


# ----------------------------------------------------------------------------- signal steps


def pos_pulse(rgb: np.ndarray, fs_hz: float, window_s: float = 1.6) -> np.ndarray:
    """POS pulse signal (Wang et al. 2017, Algorithm 1) of a uniformly sampled (n, 3) RGB trace.

    Sign as in the paper: it falls when blood volume rises. Zeros if n < one window.
    """
    c = np.asarray(rgb, np.float64)
    n = c.shape[0]
    win = max(2, int(round(window_s * fs_hz)))
    out = np.zeros(n)
    if n < win:
        return out
    frames = np.lib.stride_tricks.sliding_window_view(c, win, axis=0)  # (n - win + 1, 3, win)
    mean = frames.mean(axis=2, keepdims=True)
    cn = frames / np.where(mean > 0, mean, 1.0)
    s1 = cn[:, 1] - cn[:, 2]
    s2 = cn[:, 1] + cn[:, 2] - 2.0 * cn[:, 0]
    sd1, sd2 = s1.std(axis=1, keepdims=True), s2.std(axis=1, keepdims=True)
    h = s1 + np.divide(sd1, sd2, out=np.zeros_like(sd1), where=sd2 > 1e-12) * s2
    h -= h.mean(axis=1, keepdims=True)
    for j in range(win):  # overlap-add: out[k + j] += h[k, j]
        out[j:j + h.shape[0]] += h[:, j]
    return out


def bandpass(x: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = HR_BAND_HZ,
             edges_hz: tuple[float, float] = HR_EDGES_HZ) -> np.ndarray:
    """Linear detrend, then zero-phase FFT band-pass: gain 1 on the band, raised-cosine edges
    of the given widths below and above it."""
    x = np.asarray(x, np.float64)
    n = x.size
    if n < 4:
        return np.zeros(n)
    t = np.arange(n, dtype=np.float64)
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    pad = min(n - 1, int(round(2.0 * fs_hz)))
    xp = np.concatenate([x[pad:0:-1], x, x[-2:-pad - 2:-1]])
    spec = np.fft.rfft(xp)
    spec *= _band_gain(np.fft.rfftfreq(xp.size, 1.0 / fs_hz), band_hz, edges_hz)
    return np.fft.irfft(spec, xp.size)[pad:pad + n]


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


def spectral_peak(x: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = HR_BAND_HZ
                  ) -> tuple[float, float]:
    """(peak frequency in Hz, de Haan & Jeanne SNR in dB) of x within the band."""
    n = x.size
    nfft = max(4096, 1 << int(math.ceil(math.log2(8 * n))))
    p = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(n), nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / fs_hz)
    band = (f >= band_hz[0]) & (f <= band_hz[1])
    idx = np.flatnonzero(band)
    k = int(idx[np.argmax(p[idx])])
    f0 = float(f[k])
    if idx[0] < k < idx[-1]:
        a, b, c = np.log(p[k - 1:k + 2] + 1e-300)
        den = a - 2 * b + c
        if den < 0:
            f0 += float(0.5 * (a - c) / den) * float(f[1] - f[0])
    sig = band & ((np.abs(f - f0) <= _SNR_HALF_WIDTH_HZ)
                  | (np.abs(f - 2 * f0) <= _SNR_HALF_WIDTH_HZ))
    ps, pn = float(p[sig].sum()), float(p[band & ~sig].sum())
    if ps <= 0:
        return f0, -math.inf
    return f0, (10.0 * math.log10(ps / pn) if pn > 0 else math.inf)


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
    method: str | None = None  # "pos" or "green": the candidate used (see the module doc)
    hrv_floor_ms: float | None = None  # predicted RMSSD of beat-timing noise alone
    beat_times_s: tuple[float, ...] = field(default=(), repr=False)  # beats behind the HRV


@dataclass(frozen=True)
class _Segment:
    t: np.ndarray  # uniform grid, seconds
    rgb: np.ndarray  # (n, 3)
    span_s: float


class PulseEstimator:
    """Streaming rPPG: insert each frame's skin colour, ask for an estimate at any time.

    Memory is bounded: samples older than ``hrv_window_s`` (+2 s) before the newest are
    dropped. ``estimate`` does not change the state, so it can be called at any hop.
    """

    def __init__(self, *, fs_hz: float = 30.0, window_s: float = 12.0,
                 min_window_s: float = 10.0, hrv_window_s: float = 30.0,
                 pos_window_s: float = 1.6, max_gap_s: float = 0.5,
                 min_snr_db: float = 3.0, hrv_min_snr_db: float = 6.0,
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
        self.min_snr_db = min_snr_db
        self.hrv_min_snr_db = hrv_min_snr_db
        self.hrv_min_intervals = hrv_min_intervals
        self.hrv_max_floor_ratio = hrv_max_floor_ratio
        self.hrv_min_beat_corr = hrv_min_beat_corr
        self.methods = tuple(methods)
        self._t: deque[float] = deque()
        self._rgb: deque[np.ndarray | None] = deque()

    def insert(self, t_s: float, rgb: np.ndarray | None) -> None:
        """Add one frame's skin colour; None means no face or no usable skin in that frame.

        A sample not later than the previous one is ignored.
        """
        if self._t and t_s <= self._t[-1]:
            return
        value = None
        if rgb is not None:
            value = np.asarray(rgb, np.float64).reshape(3)
            if not np.all(np.isfinite(value)) or value.min() <= 0:
                value = None
        self._t.append(float(t_s))
        self._rgb.append(value)
        horizon = t_s - self.hrv_window_s - 2.0
        while self._t[0] < horizon:
            self._t.popleft()
            self._rgb.popleft()

    def reset(self) -> None:
        """Forget everything (e.g. another person in front of the camera)."""
        self._t.clear()
        self._rgb.clear()

    def estimate(self, t_end_s: float) -> PulseEstimate:
        """Heart rate, HRV and signal quality from the samples in (t_end_s - window, t_end_s]."""
        t_end_s = float(t_end_s)
        seg = self._segment(t_end_s, self.window_s)
        if isinstance(seg, str):
            return PulseEstimate(t_end_s, None, None, None, None, seg, "no heart rate")
        method, f0, snr = self._choose(
            [(m, *spectral_peak(self._pulse(seg, m), self.fs_hz)) for m in self.methods])
        quality = round(snr, 2) if math.isfinite(snr) else None
        if not snr >= self.min_snr_db:
            reason = (f"signal quality {snr:.1f} dB below threshold {self.min_snr_db:g} dB"
                      if math.isfinite(snr) else "no pulse signal")
            return PulseEstimate(t_end_s, None, None, None, quality, reason, "no heart rate",
                                 seg.span_s, method)
        hr_bpm = round(60.0 * f0, 2)
        if snr < self.hrv_min_snr_db:
            why = f"signal quality {snr:.1f} dB below HRV threshold {self.hrv_min_snr_db:g} dB"
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

    def _choose(self, cands: list[tuple[str, float, float]]) -> tuple[str, float, float]:
        """The first passing candidate, unless a later one sees the same rate more clearly."""
        passing = [c for c in cands if c[2] >= self.min_snr_db]
        if not passing:
            return max(cands, key=lambda c: c[2])
        first = passing[0]
        same = [c for c in passing if abs(c[1] - first[1]) <= _AGREE_HZ]
        return max(same, key=lambda c: c[2])

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
        cv = np.array([v for v in vals if v is not None])
        step = float(np.median(np.diff(tv))) if tv.size > 1 else 0.0
        cuts = np.flatnonzero(np.diff(tv) > max(self.max_gap_s, 1.5 * step)) + 1
        bounds = np.concatenate([[0], cuts, [tv.size]]).astype(int)
        spans = [float(tv[b - 1] - tv[a]) + step for a, b in zip(bounds[:-1], bounds[1:])]
        k = int(np.argmax(spans))
        a, b, span = int(bounds[k]), int(bounds[k + 1]), spans[k]
        if span < self.min_window_s - 1e-6 or b - a < 4:
            return f"not enough data ({span:.1f} s < {self.min_window_s:g} s)"
        n = int(math.floor((tv[b - 1] - tv[a]) * self.fs_hz)) + 1
        grid = tv[b - 1] - np.arange(n)[::-1] / self.fs_hz
        rgb = np.stack([np.interp(grid, tv[a:b], cv[a:b, c]) for c in range(3)], axis=1)
        return _Segment(grid, rgb, span)

    def _pulse(self, seg: _Segment, method: str, beats: bool = False) -> np.ndarray:
        """Band-passed pulse of a segment, oriented so that maxima are blood-volume maxima."""
        if method == "pos":
            raw = pos_pulse(seg.rgb, self.fs_hz, self.pos_window_s)
        else:
            g = seg.rgb[:, 1]
            raw = g / g.mean()
        if beats:
            return -bandpass(raw, self.fs_hz, BEAT_BAND_HZ, BEAT_EDGES_HZ)
        return -bandpass(raw, self.fs_hz)
