"""Voice features from a live 16 kHz audio stream: the prosody behind the stress index.

`VoiceAnalyzer.insert()` takes capture-stamped chunks; the analysis runs on
batches of about half a second of audio (and on whatever is pending when
`window()` asks), so that numpy works on whole matrices of frames and `window()`
only aggregates; only frames loud enough to be speech get the periodicity
analysis. The whole costs about 11–17 ms of one core per second of audio, a 4 s
window every 0.5 s included (`tests/unit/test_voice.py` measures it). The analyzer
keeps frame features, glottal pulses and a few hundred milliseconds of samples,
never the audio of a whole window: memory is bounded by `keep_s`.

Per frame (10 ms hop), vectorised over all frames of a batch:

* **Energy**: mean power of the 40 ms around the frame centre, in dBFS.
* **F0 by YIN** (de Cheveigné & Kawahara 2002, JASA 111(4)): the difference
  function d(τ) over a 30 ms integration window, for every lag at once from one
  FFT cross-correlation and a cumulative sum of squares; the cumulative mean
  normalised difference d'(τ); the first dip below an absolute threshold (else the
  global minimum); parabolic interpolation of d(τ) around it (the paper's remedy
  for the bias of interpolating d'). The dip depth d'(τ*) is the frame's
  aperiodicity. The three deepest dips are kept as candidates: YIN's typical
  failure is a dip at a multiple or a fraction of the period (an octave error),
  and a window replaces such outliers by the candidate nearest its median F0.
* **HNR** (Boersma 1993, Proc. Inst. Phonetic Sciences 17): the normalised
  cross-correlation r between a window of one period of the lowest F0 and the same
  window one period later, at the parabola-interpolated best lag around the YIN
  period; HNR = 10·log10(r / (1 − r)). This is the forward cross-correlation
  variant that Praat's "To Harmonicity (cc)" uses.
* **Voice activity**: an adaptive noise floor (minimum statistics after Martin 2001:
  the minimum of the smoothed frame energy over the last 10 s) instead of a
  fixed dBFS threshold. A frame is a speech candidate when it is `vad_margin_db`
  above that floor and either somewhat periodic (voiced) or noise-like with a high
  zero-crossing rate (fricatives, bursts). A window then keeps unvoiced candidates
  only near voiced frames, bridges gaps shorter than a stop closure and keeps a
  segment only when it contains voiced frames, which rejects knocks, rumble and
  steps in the background noise that the floor has not followed yet.

Per glottal cycle, as Praat's "To PointProcess (cc)": the first pulse of a voiced
run is the absolute extremum within a period of the run's first frame; each next
one is where the one-period waveform around the last pulse correlates best with
the waveform 0.8–1.25 periods later, refined by a parabola through the correlation
peak. Runs follow frames with a looser voicing bound than F0 statistics, since
the correlation checks every cycle, and keep their rhythm through a frame whose F0
jumped by an octave. Each pulse's amplitude is its cycle's peak amplitude,
measured as current Praat does (AmplitudeTier.cpp) as the Hann-windowed RMS within
±20 % of a period around the pulse: unlike the single largest sample it does not
depend on where the sampling grid falls on the peak, nor on one noisy sample
(on a clean 120 Hz pulse train the largest sample gave 0.3 % shimmer, this 0.05 %).
From the pulses, with Praat's defaults (periods 0.1–20 ms, consecutive periods
within a factor 1.3, amplitudes within 1.6):

* **Jitter (local)**: mean absolute difference of consecutive periods over the
  mean period, in %.
* **Shimmer (local)**: mean absolute difference of consecutive amplitudes over the
  mean amplitude, in %.

Per window, over voiced speech only (speech frames that YIN finds periodic): F0
mean, median and standard deviation, energy, jitter, shimmer and HNR; over the
whole window: voice activity, pause ratio and speech rate (syllable nuclei after
de Jong & Wempe 2009, Behavior Research Methods 41(2): peaks of the smoothed
intensity at least 2 dB above the dip before them, no more than 25 dB below the
window's loud speech, and voiced; counted per second of speech, i.e. their
articulation rate). A value that cannot be measured is None and
`VoiceWindow.reasons` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from wellmon.streamer.wire.protocol import NS

SAMPLE_RATE = 16_000
FULL_SCALE = 32768.0

HOP_S = 0.010            # frame step
ENERGY_FRAME_S = 0.040   # energy and zero-crossing frame
YIN_WINDOW_S = 0.030     # YIN integration window (W in the paper)
F0_MIN = 60.0            # Hz; a low male voice reaches 65–70 Hz
F0_MAX = 500.0           # Hz; a raised child or female voice
YIN_THRESHOLD = 0.15     # absolute threshold on d'(τ) for the first dip (paper: 0.1–0.2)
N_CANDIDATES = 3         # deepest dips kept per frame for the octave correction
VOICED_APERIODICITY = 0.45  # d'(τ*) below this: the frame is voiced (≈ Praat's 0.45 on r)
PULSE_APERIODICITY = 0.6  # pulses follow looser voicing; the correlation checks each cycle
PULSE_MIN_CORR = 0.3     # Praat's: a weaker cycle-to-cycle correlation ends a run of pulses
PULSE_MIN_CORR_WEAK = 0.6  # ... and this where YIN found no clear period in the frame
OCTAVE_FAR = 0.75        # octaves from the window's median F0 beyond which a frame is re-checked
VAD_APERIODICITY = 0.5   # a weakly periodic onset or offset still counts as speech
VAD_MARGIN_DB = 10.0     # speech candidate: this much above the noise floor
VAD_MIN_LEVEL_DB = -70.0  # nothing quieter is speech, however quiet the room
FLOOR_S = 10.0           # noise-floor memory: longer than a sustained vowel or a long phrase
FLOOR_SMOOTH_FRAMES = 5  # power smoothing before the minimum (reduces its downward bias)
FRICATIVE_ZCR = 0.25     # zero crossings per sample of a loud aperiodic frame that is speech
BRIDGE_GAP_S = 0.10      # shorter gaps inside speech are stop closures, not pauses
UNVOICED_REACH_S = 0.3   # unvoiced speech (s, sh, t, st-) lies this close to a voiced frame
MIN_SEGMENT_VOICED_S = 0.03  # a speech segment needs this much voicing
MIN_PAUSE_S = 0.25       # a silent pause (fluency research's usual lower bound)
DISCONTINUITY_S = 0.05   # a chunk stamped this far from where the last one ended starts afresh
BATCH_S = 0.5            # audio analysed at once (more is pending only until window())
PERIOD_MIN_S = 0.0001    # Praat's jitter/shimmer defaults
PERIOD_MAX_S = 0.02
MAX_PERIOD_FACTOR = 1.3
MAX_AMPLITUDE_FACTOR = 1.6
NUCLEUS_DIP_DB = 2.0     # de Jong & Wempe: a syllable peak stands 2 dB above the dip before it
NUCLEUS_BELOW_MAX_DB = 25.0  # ... and is no more than 25 dB below the loud speech

MIN_VOICED_S = 0.10      # below this much voiced speech, F0/energy/HNR are not given
MIN_PERIOD_PAIRS = 20    # jitter and shimmer need this many pairs of consecutive periods
MIN_SPEECH_S = 0.5       # speech rate and pause ratio need this much speech

VALUE_NAMES = ("f0_mean", "f0_median", "f0_std", "energy_db", "jitter", "shimmer", "hnr",
               "voice_activity", "pause_ratio", "speech_rate")


@dataclass(frozen=True)
class VoiceWindow:
    """What the voice did between t_start_ns and t_end_ns.

    F0, energy, jitter, shimmer and HNR are measured over voiced speech only. A
    value is None when it cannot be measured, and `reasons[name]` says why.
    """

    t_start_ns: int
    t_end_ns: int
    f0_mean: float | None = None      # Hz
    f0_median: float | None = None    # Hz
    f0_std: float | None = None       # Hz
    energy_db: float | None = None    # dBFS, power mean over voiced speech
    jitter: float | None = None       # %, local
    shimmer: float | None = None      # %, local
    hnr: float | None = None          # dB, mean over voiced frames
    voice_activity: float | None = None  # fraction of the analysed window that is speech
    pause_ratio: float | None = None  # silent pauses / time from first to last speech
    speech_rate: float | None = None  # syllable nuclei per second of speech
    voiced_s: float = 0.0             # seconds of voiced speech (10 ms frames)
    speech_s: float = 0.0             # seconds of speech
    coverage: float = 0.0             # fraction of the window that was analysed
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Periodicity:
    """YIN and HNR per frame (one row per frame)."""

    f0: np.ndarray            # Hz (YIN's choice), NaN where the dip is at the edge of the range
    aperiodicity: np.ndarray  # d'(τ*): 0 for a perfectly periodic frame, ~1 for noise
    hnr_db: np.ndarray        # Boersma HNR at the period
    cand_f0: np.ndarray       # (n, N_CANDIDATES) Hz of the deepest dips, NaN if fewer
    cand_aper: np.ndarray     # (n, N_CANDIDATES) their d', inf if fewer

    @staticmethod
    def empty(n: int) -> Periodicity:
        """What a frame that was not analysed (too quiet to be speech) gets."""
        k = N_CANDIDATES
        return Periodicity(np.full(n, np.nan), np.ones(n), np.full(n, np.nan),
                           np.full((n, k), np.nan), np.full((n, k), np.inf))


def _smooth_fft_size(n: int) -> int:
    """The smallest 2^a·3^b ≥ n (pocketfft is fastest on such sizes)."""
    best = 1 << (n - 1).bit_length()
    p3 = 3
    while p3 < best:
        p2 = 1
        while p3 * p2 < n:
            p2 *= 2
        best = min(best, p3 * p2)
        p3 *= 3
    return best


class Geometry:
    """Frame sizes in samples for one sample rate and F0 range."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, f0_min: float = F0_MIN,
                 f0_max: float = F0_MAX) -> None:
        if not 0 < f0_min < f0_max < sample_rate / 4:
            raise ValueError(f"bad F0 range {f0_min}..{f0_max} Hz for {sample_rate} Hz audio")
        self.rate = sample_rate
        self.hop = int(round(HOP_S * sample_rate))
        self.w = int(round(YIN_WINDOW_S * sample_rate))
        self.tau_min = max(2, int(math.floor(sample_rate / f0_max)))
        self.tau_max = int(math.ceil(sample_rate / f0_min))
        self.w_hnr = min(self.w, self.tau_max)
        # d(τ) is needed up to τ_max + 1 for the parabola around τ_max.
        self.n_lags = self.tau_max + 2
        self.span = self.w + self.n_lags
        self.nfft = _smooth_fft_size(self.span)
        self.energy = min(self.span, int(round(ENERGY_FRAME_S * sample_rate)))
        self.energy_offset = (self.span - self.energy) // 2
        self.centre = self.span / 2.0


def _parabola(y0: np.ndarray, y1: np.ndarray, y2: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Vertex offset (clipped to ±1) and height of the parabola through three points."""
    den = y0 - 2.0 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(den != 0, 0.5 * (y0 - y2) / den, 0.0)
    shift = np.clip(np.nan_to_num(shift), -1.0, 1.0)
    return shift, y1 - 0.25 * (y0 - y2) * shift


def frame_energy(frames: np.ndarray, geo: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Energy (dBFS) and zero-crossing rate of the 40 ms around each frame's centre."""
    seg = frames[:, geo.energy_offset:geo.energy_offset + geo.energy]
    energy_db = 10.0 * np.log10(np.maximum(np.einsum("ij,ij->i", seg, seg) / geo.energy,
                                           1e-12))
    signs = np.signbit(seg)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / (geo.energy - 1)
    return energy_db, zcr


def analyse_frames(frames: np.ndarray, geo: Geometry) -> Periodicity:
    """YIN F0, aperiodicity, octave candidates and HNR for a (n, span) matrix of frames."""
    n = frames.shape[0]
    if n == 0:
        return Periodicity.empty(0)
    w, nl = geo.w, geo.n_lags
    rows = np.arange(n)

    # YIN step 2: d(τ) = e(0) + e(τ) − 2 r(τ), with r from one FFT cross-correlation.
    spec_b = np.fft.rfft(frames, geo.nfft)
    spec_a = np.fft.rfft(frames[:, :w], geo.nfft)
    r = np.fft.irfft(np.conj(spec_a) * spec_b, geo.nfft)[:, :nl]
    sq = np.zeros((n, geo.span + 1))
    np.cumsum(frames * frames, axis=1, out=sq[:, 1:])
    e_tau = sq[:, w:w + nl] - sq[:, :nl]
    e0 = e_tau[:, :1]
    d = np.maximum(e0 + e_tau - 2.0 * r, 0.0)
    d[:, 0] = 0.0
    # Step 3: cumulative mean normalised difference.
    cum = np.cumsum(d[:, 1:], axis=1)
    dn = np.ones_like(d)
    taus = np.arange(nl)
    np.divide(d[:, 1:] * taus[1:], cum, out=dn[:, 1:], where=cum > 0)
    # Step 4: the first dip below the threshold within [τ_min, τ_max], down to its bottom;
    # if there is none, the global minimum.
    search = np.full_like(dn, np.inf)
    search[:, geo.tau_min:geo.tau_max + 1] = dn[:, geo.tau_min:geo.tau_max + 1]
    below = search < YIN_THRESHOLD
    first = np.argmax(below, axis=1)
    after = taus[None, :] >= first[:, None]
    in_dip = after & below & (np.cumsum(after & ~below, axis=1) == 0)
    tau = np.where(below.any(axis=1), np.argmin(np.where(in_dip, search, np.inf), axis=1),
                   np.argmin(search, axis=1))
    aperiodicity = dn[rows, tau]
    # Step 5: parabolic interpolation of d(τ) for the period.
    shift, _ = _parabola(d[rows, tau - 1], d[rows, tau], d[rows, tau + 1])
    inside = (tau > geo.tau_min) & (tau < geo.tau_max) & (e0[:, 0] > 0)
    f0 = np.where(inside, geo.rate / (tau + shift), np.nan)

    # Candidates: the deepest local minima of d'.
    interior = np.full_like(search, np.inf)
    is_min = (search[:, 1:-1] < search[:, :-2]) & (search[:, 1:-1] <= search[:, 2:])
    interior[:, 1:-1] = np.where(is_min, search[:, 1:-1], np.inf)
    k = N_CANDIDATES
    c_tau = np.argpartition(interior, k, axis=1)[:, :k]
    c_aper = interior[rows[:, None], c_tau]
    c_shift, _ = _parabola(d[rows[:, None], c_tau - 1], d[rows[:, None], c_tau],
                           d[rows[:, None], np.minimum(c_tau + 1, nl - 1)])
    ok = np.isfinite(c_aper) & (c_tau > geo.tau_min) & (c_tau < geo.tau_max)
    cand_f0 = np.where(ok, geo.rate / (c_tau + c_shift), np.nan)
    cand_aper = np.where(ok, c_aper, np.inf)

    # Boersma: normalised cross-correlation over one period of F0_MIN (centred in
    # YIN's window), at the three lags around the period, peak-interpolated.
    ws, o = geo.w_hnr, (w - geo.w_hnr) // 2
    lags = np.clip(tau[:, None] + np.arange(-1, 2)[None, :], 1, nl - 1)
    idx = o + lags[:, :, None] + np.arange(ws)[None, None, :]
    shifted = frames[rows[:, None, None], idx]
    head = frames[:, o:o + ws]
    cross = np.einsum("ij,ikj->ik", head, shifted)
    e_head = sq[:, o + ws:o + ws + 1] - sq[:, o:o + 1]
    e_lag = sq[rows[:, None], o + lags + ws] - sq[rows[:, None], o + lags]
    with np.errstate(divide="ignore", invalid="ignore"):
        nc = np.nan_to_num(cross / np.sqrt(e_head * e_lag))
    _, peak = _parabola(nc[:, 0], nc[:, 1], nc[:, 2])
    peak = np.clip(np.maximum(peak, nc[:, 1]), 1e-6, 1.0 - 1e-6)
    hnr_db = 10.0 * np.log10(peak / (1.0 - peak))
    return Periodicity(f0, aperiodicity, hnr_db, cand_f0, cand_aper)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean vector."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def speech_mask(candidate: np.ndarray, voiced: np.ndarray, hop_s: float = HOP_S) -> np.ndarray:
    """Frame-level speech decision from candidates and voiced frames.

    An unvoiced candidate counts only within UNVOICED_REACH_S of a voiced frame (a
    fricative or a burst sits next to a vowel; loud noise does not); gaps shorter
    than a stop closure are bridged; a segment needs some voicing.
    """
    n = candidate.size
    reach = int(round(UNVOICED_REACH_S / hop_s))
    csum = np.concatenate([[0], np.cumsum(voiced.astype(np.int32))])
    idx = np.arange(n)
    near_voice = csum[np.minimum(idx + reach + 1, n)] - csum[np.maximum(idx - reach, 0)] > 0
    mask = candidate & near_voice
    starts, ends = _runs(~mask)
    bridge = int(round(BRIDGE_GAP_S / hop_s))
    for s, e in zip(starts, ends):
        if 0 < s and e < mask.size and e - s < bridge:
            mask[s:e] = True
    need = max(1, int(round(MIN_SEGMENT_VOICED_S / hop_s)))
    starts, ends = _runs(mask)
    for s, e in zip(starts, ends):
        if csum[e] - csum[s] < need:
            mask[s:e] = False
    return mask


class VoiceAnalyzer:
    """Streaming voice features of one audio stream (see the module docstring)."""

    FRAME_FIELDS = ("_t", "_energy", "_zcr", "_f0", "_aper", "_hnr", "_floor", "_cf0",
                    "_caper")
    PULSE_FIELDS = ("_p_t", "_p_amp", "_p_run")

    def __init__(self, sample_rate: int = SAMPLE_RATE, *, keep_s: float = 6.0,
                 f0_min: float = F0_MIN, f0_max: float = F0_MAX,
                 vad_margin_db: float = VAD_MARGIN_DB) -> None:
        self.rate = sample_rate
        self.geo = Geometry(sample_rate, f0_min, f0_max)
        self.keep_ns = int(keep_s * NS)
        self.vad_margin_db = vad_margin_db
        self._batch = int(BATCH_S * sample_rate)
        self._floor_frames = int(round(FLOOR_S / HOP_S))
        # Samples of the current continuous segment, from absolute index _buf_start.
        self._buf = np.zeros(0)
        self._buf_start = 0
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._next_frame = 0
        self._seg_t0_ns: int | None = None
        self._seg_end_ns = 0
        # Noise-floor history (carried across segments): recent powers, smoothed energies.
        self._pow_hist = np.zeros(0)
        self._smooth_hist = np.zeros(0)
        # Frame store (all segments), keyed by frame-centre capture time.
        self._t = np.zeros(0, np.int64)
        self._energy = np.zeros(0)
        self._zcr = np.zeros(0)
        self._f0 = np.zeros(0)
        self._aper = np.zeros(0)
        self._hnr = np.zeros(0)
        self._floor = np.zeros(0)
        self._cf0 = np.zeros((0, N_CANDIDATES))
        self._caper = np.zeros((0, N_CANDIDATES))
        # Pulse tracker: per-frame F0 of the current segment (NaN quiet, 0 aperiodic).
        self._trk_f0 = np.zeros(0)
        self._trk_first = 0
        self._pulse: float | None = None
        self._last_pos = -math.inf
        self._step: float | None = None
        self._sq = np.zeros(1)
        self._run = 0
        self._scan_frame = 0
        self._p_t = np.zeros(0, np.int64)
        self._p_amp = np.zeros(0)
        self._p_run = np.zeros(0, np.int64)

    # ------------------------------------------------------------------ streaming

    def insert(self, t_ns: int, samples: np.ndarray) -> None:
        """Take a chunk of mono samples (int16, or float in [-1, 1]) whose first is at t_ns."""
        x = np.asarray(samples).reshape(-1)
        if x.size == 0:
            return
        x = (x.astype(np.float64) / FULL_SCALE if np.issubdtype(x.dtype, np.integer)
             else x.astype(np.float64))
        if self._seg_t0_ns is None or abs(t_ns - self._seg_end_ns) > DISCONTINUITY_S * NS:
            self._process()
            self._start_segment(t_ns)
        self._pending.append(x)
        self._pending_n += x.size
        total = self._buf_start + self._buf.size + self._pending_n
        self._seg_end_ns = self._time_ns(total)
        if self._pending_n >= self._batch:
            self._process()

    def _start_segment(self, t_ns: int) -> None:
        """A new continuous stretch of audio: frames and pulses do not straddle the seam.

        A clock that went backwards (a restarted source) makes what was stored after
        the new start meaningless: it is dropped, which keeps the store sorted.
        """
        if self._t.size and t_ns <= self._t[-1]:
            cut = int(np.searchsorted(self._t, t_ns))
            for name in self.FRAME_FIELDS:
                setattr(self, name, getattr(self, name)[:cut])
            pcut = int(np.searchsorted(self._p_t, t_ns))
            for name in self.PULSE_FIELDS:
                setattr(self, name, getattr(self, name)[:pcut])
        self._buf = np.zeros(0)
        self._buf_start = 0
        self._next_frame = 0
        self._seg_t0_ns = t_ns
        self._seg_end_ns = t_ns
        self._trk_f0 = np.zeros(0)
        self._trk_first = 0
        self._pulse = None
        self._last_pos = -math.inf
        self._scan_frame = 0

    def _time_ns(self, index: float) -> int:
        assert self._seg_t0_ns is not None
        return self._seg_t0_ns + int(round(index * NS / self.rate))

    def _process(self) -> None:
        """Analyse every complete frame of the pending audio, then follow the pulses."""
        if not self._pending:
            return
        self._buf = np.concatenate([self._buf, *self._pending])
        self._pending, self._pending_n = [], 0
        self._analyse_ready()
        self._track_pulses()
        self._trim_buffer()
        self._trim_store()

    def _analyse_ready(self) -> None:
        geo = self.geo
        end = self._buf_start + self._buf.size
        if end - self._next_frame < geo.span:
            return
        n = (end - self._next_frame - geo.span) // geo.hop + 1
        offset = self._next_frame - self._buf_start
        frames = sliding_window_view(self._buf[offset:], geo.span)[::geo.hop][:n]
        energy_db, zcr = frame_energy(frames, geo)
        floor = self._noise_floor(energy_db)
        # Only frames loud enough to be speech need the periodicity analysis.
        loud = energy_db > np.maximum(floor + self.vad_margin_db, VAD_MIN_LEVEL_DB)
        per = Periodicity.empty(n)
        if loud.any():
            found = analyse_frames(frames[loud], geo)
            for name in ("f0", "aperiodicity", "hnr_db", "cand_f0", "cand_aper"):
                getattr(per, name)[loud] = getattr(found, name)
        first = self._next_frame // geo.hop
        centres = self._next_frame + np.arange(n) * geo.hop + geo.centre
        t = self._time_ns_array(centres)
        new = (t, energy_db, zcr, per.f0, per.aperiodicity, per.hnr_db, floor,
               per.cand_f0, per.cand_aper)
        for name, values in zip(self.FRAME_FIELDS, new):
            setattr(self, name, np.concatenate([getattr(self, name), values]))
        periodic = per.aperiodicity < PULSE_APERIODICITY
        pulse_f0 = np.where(loud, np.where(periodic, np.nan_to_num(per.f0), 0.0), np.nan)
        if self._trk_f0.size == 0:
            self._trk_first = first
        self._trk_f0 = np.concatenate([self._trk_f0, pulse_f0])
        self._next_frame += n * geo.hop

    def _noise_floor(self, energy_db: np.ndarray) -> np.ndarray:
        """Minimum statistics: the least smoothed energy of the last FLOOR_S seconds."""
        power = 10.0 ** (energy_db / 10.0)
        k, m = FLOOR_SMOOTH_FRAMES, self._floor_frames
        padded = np.concatenate([np.full(k - 1 - self._pow_hist.size, power[0]),
                                 self._pow_hist, power])
        smooth = 10.0 * np.log10(np.maximum(sliding_window_view(padded, k).mean(axis=1),
                                            1e-12))
        self._pow_hist = padded[-(k - 1):]
        padded = np.concatenate([np.full(m - 1 - self._smooth_hist.size, np.inf),
                                 self._smooth_hist, smooth])
        floor = sliding_window_view(padded, m).min(axis=1)
        self._smooth_hist = smooth[-(m - 1):] if smooth.size >= m - 1 else padded[-(m - 1):]
        return np.maximum(floor, VAD_MIN_LEVEL_DB - self.vad_margin_db)

    def _track_pulses(self) -> None:
        """Place glottal pulses along voiced runs, cycle after cycle (see the module doc)."""
        geo = self.geo
        f0 = self._trk_f0
        n_frames = self._trk_first + f0.size
        end = self._buf_start + self._buf.size
        new_t: list[float] = []   # pulse positions (samples of the segment)
        new_a: list[float] = []   # the period used to find each
        new_r: list[int] = []
        self._sq = np.concatenate([[0.0], np.cumsum(self._buf * self._buf)])

        f0_list = f0.tolist()
        first, centre, hop = self._trk_first, geo.centre, geo.hop

        def frame_of(pos: float) -> int:
            return int((pos - centre) / hop + 0.5)

        def f0_at(pos: float) -> float | None:
            """Frame F0 at pos: None if not analysed yet, NaN if quiet, 0 if aperiodic."""
            k = int((pos - centre) / hop + 0.5)
            if k >= n_frames:
                return None
            return f0_list[k - first] if k >= first else math.nan

        while True:
            if self._pulse is None:
                k0 = max(self._scan_frame, self._trk_first)
                voiced = np.flatnonzero(f0[k0 - self._trk_first:] > 0)
                if voiced.size == 0:
                    self._scan_frame = n_frames
                    break
                k = k0 + int(voiced[0])
                period = self.rate / f0[k - self._trk_first]
                c = k * geo.hop + geo.centre
                if int(c + period) + 2 > end:
                    self._scan_frame = k
                    break
                self._scan_frame = k + 1
                lo = max(c - period / 2, self._last_pos + 1.0)  # pulses stay in time order
                if lo >= c + period / 2 - 2:
                    continue
                pos = self._extremum(lo, c + period / 2)
                self._run += 1
                self._step = None
                self._pulse = pos
            else:
                pos = self._pulse
                f_here = f0_at(pos)
                if f_here is None:
                    break
                if math.isnan(f_here) or (f_here <= 0 and self._step is None):
                    self._end_run(frame_of(pos) + 1)
                    continue
                period = self.rate / f_here if f_here > 0 else self._step
                assert period is not None
                if self._step and abs(math.log2(period / self._step)) > 0.5:
                    period = self._step  # an octave error of that frame: keep the rhythm
                if int(pos + 2.75 * period) + 2 > end:
                    break
                step, corr = self._correlate(pos, period)
                f_next = f0_at(pos + step)
                if f_next is None:
                    break
                weak = f_here <= 0 or f_next <= 0
                if math.isnan(f_next) or corr < (PULSE_MIN_CORR_WEAK if weak else PULSE_MIN_CORR):
                    self._end_run(frame_of(pos + step) + 1)
                    continue
                pos += step
                self._step = step
                self._pulse = pos
            self._last_pos = pos
            new_t.append(pos)
            new_a.append(period)
            new_r.append(self._run)
        if new_t:
            pos_arr = np.array(new_t)
            self._p_t = np.concatenate([self._p_t, self._time_ns_array(pos_arr)])
            self._p_amp = np.concatenate([self._p_amp,
                                          self._peak_amplitudes(pos_arr, np.array(new_a))])
            self._p_run = np.concatenate([self._p_run, np.array(new_r, np.int64)])

    def _time_ns_array(self, index: np.ndarray) -> np.ndarray:
        assert self._seg_t0_ns is not None
        return self._seg_t0_ns + np.round(index * NS / self.rate).astype(np.int64)

    def _end_run(self, next_frame: int) -> None:
        self._pulse = None
        self._scan_frame = max(self._scan_frame, next_frame)

    def _correlate(self, pos: float, period: float) -> tuple[float, float]:
        """Best shift in [0.8, 1.25] periods of the one-period window at pos, and its r."""
        length = max(4, int(round(period)))
        a = int(round(pos)) - length // 2 - self._buf_start
        s_lo = int(math.floor(0.8 * period)) - 1
        s_hi = int(math.ceil(1.25 * period)) + 1
        template = self._buf[a:a + length]
        prod = np.correlate(self._buf[a + s_lo:a + s_hi + length], template, "valid")
        sq = self._sq
        norms = ((sq[a + s_lo + length:a + s_hi + length + 1] - sq[a + s_lo:a + s_hi + 1])
                 * (sq[a + length] - sq[a]))
        r = prod / np.sqrt(np.maximum(norms, 1e-300))
        j = int(np.argmax(r[1:-1])) + 1
        r0, r1, r2 = float(r[j - 1]), float(r[j]), float(r[j + 1])
        den = r0 - 2.0 * r1 + r2
        shift = min(0.5, max(-0.5, 0.5 * (r0 - r2) / den)) if den < 0 else 0.0
        return s_lo + j + shift, r1 - 0.25 * (r0 - r2) * shift

    def _extremum(self, lo_pos: float, hi_pos: float) -> float:
        """Position, parabola-refined, of the largest |sample| in [lo_pos, hi_pos]."""
        lo = max(int(math.ceil(lo_pos)), self._buf_start + 1)
        hi = min(int(hi_pos), self._buf_start + self._buf.size - 2)
        seg = self._buf[lo - self._buf_start:hi + 1 - self._buf_start]
        sign = 1.0 if seg.max() >= -seg.min() else -1.0
        j = int(np.argmax(sign * seg)) + lo - self._buf_start
        y0, y1, y2 = sign * self._buf[j - 1:j + 2]
        den = y0 - 2.0 * y1 + y2
        shift = min(0.5, max(-0.5, 0.5 * (y0 - y2) / den)) if den < 0 else 0.0
        return j + self._buf_start + shift

    def _peak_amplitudes(self, pos: np.ndarray, period: np.ndarray) -> np.ndarray:
        """Each cycle's peak amplitude: Hann-windowed RMS within ±20 % of a period of pos."""
        half = 0.2 * period
        width = int(math.ceil(2.0 * float(half.max()))) + 2
        first = np.ceil(pos - half).astype(np.int64)
        idx = first[:, None] + np.arange(width)[None, :]
        phase = (idx - pos[:, None]) / half[:, None]
        w = np.where(np.abs(phase) <= 1.0, 0.5 + 0.5 * np.cos(np.pi * phase), 0.0)
        local = np.clip(idx - self._buf_start, 0, self._buf.size - 1)
        v = self._buf[local] * w
        return np.sqrt(np.einsum("ij,ij->i", v, v) / np.maximum(np.einsum("ij,ij->i", w, w),
                                                                 1e-12))

    def _trim_buffer(self) -> None:
        """Keep the samples and frame F0s that the next frame and the pulse search need."""
        geo = self.geo
        pulse_from = (self._pulse if self._pulse is not None
                      else self._scan_frame * geo.hop + geo.centre)
        keep_from = min(self._next_frame, int(pulse_from) - geo.tau_max - 4)
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from
        drop_frames = int((pulse_from - geo.centre) // geo.hop) - 2 - self._trk_first
        if drop_frames > 0:
            self._trk_f0 = self._trk_f0[drop_frames:]
            self._trk_first += drop_frames

    def _trim_store(self) -> None:
        if self._t.size == 0:
            return
        cut = int(np.searchsorted(self._t, self._t[-1] - self.keep_ns))
        if cut > 0:
            for name in self.FRAME_FIELDS:
                setattr(self, name, getattr(self, name)[cut:])
        pcut = int(np.searchsorted(self._p_t, self._t[0]))
        if pcut > 0:
            for name in self.PULSE_FIELDS:
                setattr(self, name, getattr(self, name)[pcut:])

    # ------------------------------------------------------------------ windows

    def _frames_between(self, t_start_ns: int, t_end_ns: int
                        ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Frames around the range: first index, times, inside mask, speech and voiced masks.

        Half a second of context on both sides lets the bridging and the segment
        check see whole segments at the window's edges.
        """
        self._process()
        ctx = NS // 2
        lo, hi = (int(i) for i in np.searchsorted(self._t, [t_start_ns - ctx, t_end_ns + ctx]))
        t = self._t[lo:hi]
        inside = (t >= t_start_ns) & (t < t_end_ns)
        aper, f0 = self._aper[lo:hi], self._f0[lo:hi]
        loud = self._energy[lo:hi] > np.maximum(self._floor[lo:hi] + self.vad_margin_db,
                                                VAD_MIN_LEVEL_DB)
        periodic = (aper < VOICED_APERIODICITY) & ~np.isnan(f0)
        candidate = loud & ((aper < VAD_APERIODICITY) | (self._zcr[lo:hi] > FRICATIVE_ZCR))
        speech = speech_mask(candidate, loud & periodic)
        return lo, t, inside, speech, speech & periodic

    def speech_intervals(self, t_start_ns: int, t_end_ns: int) -> list[tuple[int, int]]:
        """The voice-activity segments in the range, as (start_ns, end_ns) of their frames."""
        _, t, inside, speech, _ = self._frames_between(t_start_ns, t_end_ns)
        starts, ends = _runs(speech & inside)
        half = int(HOP_S * NS / 2)
        return [(int(t[a]) - half, int(t[b - 1]) + half) for a, b in zip(starts, ends)]

    def steps(self, t_start_ns: int, t_end_ns: int, n: int) -> np.ndarray:
        """Per step of ``n`` equal steps: [frames analysed, speech, voiced, mean voiced F0,
        mean energy dB] (F0 NaN without voiced frames, energy NaN without frames); the fusion
        model's audio sequence. One pass over the frames, not ``n`` calls of ``window()``."""
        out = np.zeros((n, 5))
        out[:, 3:] = np.nan
        lo, t, inside, speech, voiced = self._frames_between(t_start_ns, t_end_ns)
        if not np.any(inside):
            return out
        step = np.minimum((t[inside] - t_start_ns) * n // max(1, t_end_ns - t_start_ns), n - 1)
        energy = self._energy[lo:lo + t.size][inside]
        f0 = self._f0[lo:lo + t.size][inside]
        sp, vo = speech[inside], voiced[inside] & ~np.isnan(f0)
        for i in np.unique(step):
            at = step == i
            out[i, 0] = np.count_nonzero(at)
            out[i, 1] = np.count_nonzero(sp[at])
            out[i, 2] = np.count_nonzero(vo[at])
            if out[i, 2]:
                out[i, 3] = float(np.mean(f0[at & vo]))
            out[i, 4] = float(np.mean(energy[at]))
        return out

    def window(self, t_start_ns: int, t_end_ns: int) -> VoiceWindow:
        """Aggregate the frames whose centre lies in [t_start_ns, t_end_ns)."""
        reasons: dict[str, str] = {}
        span_s = max(1e-9, (t_end_ns - t_start_ns) / NS)
        lo, t, inside, speech, voiced = self._frames_between(t_start_ns, t_end_ns)
        n_in = int(np.count_nonzero(inside))
        if n_in == 0:
            return VoiceWindow(t_start_ns, t_end_ns, reasons=dict.fromkeys(
                VALUE_NAMES, "no audio analysed in the window"))
        energy = self._energy[lo:lo + t.size]
        sp_in, v_in = speech[inside], voiced[inside]
        speech_s = float(np.count_nonzero(sp_in) * HOP_S)
        voiced_s = float(np.count_nonzero(v_in) * HOP_S)
        out: dict[str, float | None] = dict.fromkeys(VALUE_NAMES)
        out["voice_activity"] = float(np.count_nonzero(sp_in) / n_in)
        no_speech = "no speech in the window"

        sel = np.flatnonzero(inside)[v_in] + lo
        f = (_octave_corrected(self._f0[sel], self._cf0[sel], self._caper[sel])
             if sel.size else sel.astype(float))
        f = f[~np.isnan(f)]
        if f.size * HOP_S < MIN_VOICED_S:
            why = (f"too little voiced speech ({f.size * HOP_S:.2f} s < {MIN_VOICED_S:.2f} s)"
                   if speech_s > 0 else no_speech)
            reasons.update(dict.fromkeys(("f0_mean", "f0_median", "f0_std", "energy_db", "hnr"),
                                         why))
        else:
            out["f0_mean"] = float(np.mean(f))
            out["f0_median"] = _quantile(f, 0.5)
            out["f0_std"] = float(np.std(f))
            out["energy_db"] = float(10.0 * np.log10(np.mean(10.0 ** (self._energy[sel] / 10))))
            out["hnr"] = float(np.mean(self._hnr[sel]))

        out["jitter"], out["shimmer"], why_not = self._perturbation(t_start_ns, t_end_ns,
                                                                   t[speech])
        reasons.update(why_not)

        if speech_s < MIN_SPEECH_S:
            why = (f"too little speech ({speech_s:.2f} s < {MIN_SPEECH_S:.2f} s)"
                   if speech_s > 0 else no_speech)
            reasons["pause_ratio"] = reasons["speech_rate"] = why
        else:
            out["pause_ratio"] = _pause_ratio(sp_in)
            out["speech_rate"] = _syllable_nuclei(energy, speech, voiced, inside) / speech_s
        return VoiceWindow(t_start_ns, t_end_ns, voiced_s=voiced_s, speech_s=speech_s,
                           coverage=min(1.0, n_in * HOP_S / span_s), reasons=reasons, **out)

    def _perturbation(self, t_start_ns: int, t_end_ns: int, speech_t: np.ndarray
                      ) -> tuple[float | None, float | None, dict[str, str]]:
        """Local jitter and shimmer (%) from the window's pulses inside speech, and why not."""
        a, b = np.searchsorted(self._p_t, [t_start_ns, t_end_ns])
        pt, amp, run = self._p_t[a:b], self._p_amp[a:b], self._p_run[a:b]
        if speech_t.size and pt.size:
            j = np.clip(np.searchsorted(speech_t, pt), 1, max(1, speech_t.size - 1))
            near = np.minimum(np.abs(speech_t[np.minimum(j, speech_t.size - 1)] - pt),
                              np.abs(speech_t[j - 1] - pt))
            keep = near <= 0.6 * HOP_S * NS
            pt, amp, run = pt[keep], amp[keep], run[keep]
        else:
            pt = pt[:0]
        periods = np.diff(pt) / NS
        ok = ((run[1:] == run[:-1]) & (periods >= PERIOD_MIN_S) & (periods <= PERIOD_MAX_S)
              if pt.size > 1 else np.zeros(0, bool))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.maximum(periods[1:], periods[:-1]) / np.minimum(periods[1:], periods[:-1])
        pair = ok[1:] & ok[:-1] & (ratio <= MAX_PERIOD_FACTOR)
        n_pairs = int(np.count_nonzero(pair))
        if n_pairs < MIN_PERIOD_PAIRS:
            why = (f"too few glottal cycles in voiced speech ({n_pairs} pairs of consecutive "
                   f"periods < {MIN_PERIOD_PAIRS})")
            return None, None, {"jitter": why, "shimmer": why}
        jitter = 100.0 * float(np.mean(np.abs(np.diff(periods))[pair]) / np.mean(periods[ok]))
        # Shimmer over pulses whose both neighbouring periods are valid (Praat's
        # AmplitudeTier), between consecutive such pulses.
        member = np.zeros(pt.size, bool)
        member[1:-1] = pair
        where = np.flatnonzero(member)
        amps = amp[where]
        linked = np.diff(where) == 1
        a1, a2 = amps[:-1][linked], amps[1:][linked]
        with np.errstate(divide="ignore", invalid="ignore"):
            good = np.maximum(a1, a2) / np.minimum(a1, a2) <= MAX_AMPLITUDE_FACTOR
        n_good = int(np.count_nonzero(good))
        if n_good < MIN_PERIOD_PAIRS or not np.mean(amps) > 0:
            return jitter, None, {"shimmer": f"too few cycles of steady amplitude ({n_good} "
                                             f"pairs < {MIN_PERIOD_PAIRS})"}
        shimmer = 100.0 * float(np.mean(np.abs(a1 - a2)[good]) / np.mean(amps))
        return jitter, shimmer, {}


def _quantile(x: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile (np.quantile costs more in overhead than in sorting)."""
    s = np.sort(x)
    pos = q * (s.size - 1)
    i = int(pos)
    j = min(i + 1, s.size - 1)
    return float(s[i] + (s[j] - s[i]) * (pos - i))


def _octave_corrected(f0: np.ndarray, cand_f0: np.ndarray, cand_aper: np.ndarray) -> np.ndarray:
    """Replace F0s far from the median by the nearest good candidate (NaN if none)."""
    med = _quantile(f0, 0.5)
    far = np.abs(np.log2(f0 / med)) > OCTAVE_FAR
    if not far.any():
        return f0
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.abs(np.log2(cand_f0[far] / med))
    dist = np.where((cand_aper[far] < VOICED_APERIODICITY) & ~np.isnan(dist), dist, np.inf)
    best = np.argmin(dist, axis=1)
    rows = np.arange(best.size)
    fixed = np.where(dist[rows, best] <= OCTAVE_FAR, cand_f0[far][rows, best], np.nan)
    out = f0.copy()
    out[far] = fixed
    return out


def _pause_ratio(speech: np.ndarray) -> float:
    """Silent pauses (≥ MIN_PAUSE_S) over the time from the first to the last speech frame."""
    idx = np.flatnonzero(speech)
    inner = ~speech[idx[0]:idx[-1] + 1]
    starts, ends = _runs(inner)
    lengths = (ends - starts) * HOP_S
    return float(np.sum(lengths[lengths >= MIN_PAUSE_S])) / (inner.size * HOP_S)


# Intensity smoothing for the nuclei: a 5-frame Hann kernel over the 40 ms energy frames
# spans about 70 ms, close to the 64 ms (3.2 / 50 Hz) of the Praat intensity contour that
# de Jong & Wempe's script analyses.
_INTENSITY_KERNEL = np.hanning(7)[1:-1] / np.hanning(7)[1:-1].sum()


def _syllable_nuclei(energy_db: np.ndarray, speech: np.ndarray, voiced: np.ndarray,
                     inside: np.ndarray) -> int:
    """Syllable nuclei (de Jong & Wempe 2009) among the frames marked `inside`."""
    smooth = 10.0 * np.log10(np.maximum(
        np.convolve(10.0 ** (energy_db / 10.0), _INTENSITY_KERNEL, "same"), 1e-12))
    loud = _quantile(smooth[speech], 0.99)
    peak = np.zeros(smooth.size, bool)
    peak[1:-1] = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:])
    peak &= speech & (smooth > loud - NUCLEUS_BELOW_MAX_DB)
    # A peak counts when it stands NUCLEUS_DIP_DB above the lowest point since the
    # previous counted peak (or since its speech segment began), and is voiced.
    seg_start = np.maximum.accumulate(np.where(~speech, np.arange(speech.size), -1)) + 1
    near_voiced = np.convolve(voiced.astype(np.int32), np.ones(5, np.int32), "same") > 0
    count, last = 0, 0
    for i in np.flatnonzero(peak & near_voiced):
        start = max(last, int(seg_start[i]))
        if smooth[i] - float(np.min(smooth[start:i + 1])) >= NUCLEUS_DIP_DB:
            count += int(inside[i])
            last = i
    return count
