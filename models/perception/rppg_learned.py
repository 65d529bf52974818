"""Learned rPPG: open-rppg's FacePhys, converted to ONNX on the user's machine.

``wellmon models build --rppg facephys`` (models/tools/rppg_build.py) writes the ONNX file into
the user's data folder; ``perception.rppg_model`` turns this stage on. It runs beside the
classic POS/GREEN estimator (models/perception/rppg.py) and reports ``heart_rate_learned`` and
``pulse_learned_snr_db``; the classic ``heart_rate`` is untouched.

Fed as open-rppg feeds it (``rppg/main.py``, version 0.1.1):

* **Face box**: open-rppg takes BlazeFace's box (centre cx, cy, size w, h) and crops
  x in cx +- 0.45 w, y from cy - 0.6 h to cy + 0.5 h. wellmon has the face-mesh box of
  each frame (models/perception/face.py ``Face.box``) and applies the same proportions to
  it. The box is smoothed per coordinate by open-rppg's 1-D Kalman filter (process noise 0.01,
  measurement noise 0.5, time-scaled to 30 frames/s) and the crop only moves when the
  smoothed box's centre moved by more than 2 % of its size, so that landmark jitter does
  not shake the pixels the model sees.
* **Crop**: that box of the frame, RGB, resized to 36x36 with ``cv2.INTER_AREA``; float32
  in 0..255 (the graph divides by 255).
* **Frame rate**: the model was trained at 30 frames/s and open-rppg resamples every video
  to 30/s: each frame fills the 30 Hz slots up to its own time (a 15 frames/s camera feeds
  each frame twice) and ``dt`` stays 1/30. Done the same here.
* **No face**: up to ``hold_s`` (1 s, as open-rppg's ``hasface`` timeout) the last box is
  cropped from the new frames; after that the slots are empty, and the model's state is
  reset when the face returns (open-rppg feeds black frames instead; a reset keeps a
  minute-long absence from being normalised into the model's state).

**Heart rate and quality**: the model's output is a pulse (BVP) sample per slot. Over the
last ``window_s`` seconds (the longest run without a gap, at least ``min_window_s``, and
excluding the ``warmup_s`` after a reset), the trace is band-passed and its spectral peak
and de Haan & Jeanne SNR are taken with ``models.perception.rppg.bandpass`` and
``models.perception.rppg.spectral_peak``: the same gate as the classic estimator. FacePhys returns a
waveform even from a face with no pulse at all, so the heart rate is withheld below
``min_snr_db``, with the reason. open-rppg's own SQI (autocorrelation) is not used.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from wellmon.models.errors import ModelError
from wellmon.models.perception.rppg import bandpass, spectral_peak
from wellmon.models.perception.runtime import CPU, Session, session_options
from wellmon.models.tools.rppg_build import COMMAND, SPECS, default_path

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels
# The learned pulse's SNR gate (dB; perception.pulse_snr_margin_db is added in the node).
# FacePhys's output on a face with no pulse scored at most ~-1 dB on generated clips
# (docs/rppg-learned.md), its output on pulsing faces 7-10 dB.
MIN_SNR_DB = 3.0


def resolve(value: str) -> Path:
    """`perception.rppg_model` -> the ONNX file: a model name (its default path in the data
    folder) or a path."""
    if value in SPECS:
        return default_path(value)
    return Path(value).expanduser()


class LearnedModel:
    """One ONNX session of a converted learned rPPG model, shared by every stream."""

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None,
                 threads: int = 0) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise ModelError(f"perception.rppg_model: model file not found: {self.path}; "
                             f"build it with `{COMMAND}` (docs/rppg-learned.md)")
        try:
            self.session = Session(str(self.path), session_options(threads),
                                   list(providers or [CPU]))
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ModelError(f"perception.rppg_model: cannot load {self.path}: {exc}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("wellmon.kind") != "rppg-step":
            raise ModelError(f"perception.rppg_model: {self.path} is not a learned rPPG model "
                             f"built by `{COMMAND}` (no wellmon.kind rppg-step metadata)")
        self.meta = dict(meta)
        names = [i.name for i in self.session.get_inputs()]
        self.state_names = [n for n in names if n.startswith("state_in_")]
        if names[:3] != ["frame", "dt", "reset"] or len(self.state_names) != len(names) - 3:
            raise ModelError(f"perception.rppg_model: {self.path} has inputs {names}")
        self.state_shapes = [tuple(int(d) for d in i.shape[1:])
                             for i in self.session.get_inputs()[3:]]
        self.size = int(meta.get("input_size", "36"))
        self.fps = float(meta.get("fps", "30"))
        self._dt = np.array([1.0 / self.fps], np.float32)

    def initial_state(self, n: int = 1) -> list[np.ndarray]:
        """Zeros; the first step after it must have reset = 1 (the graph holds the model's
        learned initial state)."""
        return [np.zeros((n, *s), np.float32) for s in self.state_shapes]

    def step(self, crops: np.ndarray, state: list[np.ndarray], reset: np.ndarray
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One 30 Hz slot for N streams: crops (N, size, size, 3) RGB 0..255."""
        feed = {"frame": np.ascontiguousarray(crops, np.float32), "dt": self._dt,
                "reset": np.asarray(reset, np.float32)}
        feed.update(zip(self.state_names, state))
        out = self.session.run(None, feed)
        return out[0], out[1:]


class _Kalman1D:
    """open-rppg's KalmanFilter1D (rppg/main.py)."""

    def __init__(self, x: float, q: float = 0.01, r: float = 0.5, p: float = 1.0,
                 ref_dt: float = 1 / 30) -> None:
        self.x, self.q, self.r, self.p, self.ref_dt = x, q, r, p, ref_dt

    def update(self, z: float, dt: float) -> float:
        p = self.p + self.q * (dt / self.ref_dt) ** 2
        k = p / (p + self.r)
        self.x += k * (z - self.x)
        self.p = (1 - k) * p
        return self.x


def crop_box(face_box: Box) -> Box:
    """open-rppg's crop of a face box: 0.9 of its width, from 0.6 of its height above its
    centre to 0.5 below."""
    x0, y0, x1, y1 = face_box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    return cx - 0.45 * w, cy - 0.6 * h, cx + 0.45 * w, cy + 0.5 * h


def face_crop(frame_bgr: np.ndarray, box: Box, size: int) -> np.ndarray | None:
    """The RGB size x size crop (float32 0..255) of a crop box, or None if it is empty."""
    h, w = frame_bgr.shape[:2]
    x0, y0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x1, y1 = min(w, int(round(box[2]))), min(h, int(round(box[3])))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = cv2.resize(frame_bgr[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    return crop[:, :, ::-1].astype(np.float32)


def box_of(face: Any) -> Box | None:
    """A face box from a box (x0, y0, x1, y1) or from landmarks (K, 2 or 3), else None."""
    if face is None:
        return None
    a = np.asarray(face, np.float64)
    if a.ndim == 2 and a.shape[0] > 2:
        return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(
            a[:, 1].max())
    if a.shape == (4,) and np.all(np.isfinite(a)):
        return tuple(float(v) for v in a)  # type: ignore[return-value]
    return None


@dataclass(frozen=True)
class LearnedEstimate:
    """One window's learned heart rate; None comes with its reason."""

    t_end_s: float
    heart_rate_bpm: float | None
    quality: float | None  # de Haan & Jeanne SNR (dB) of the window, as models/perception/rppg.py
    reason: str | None
    window_s: float = 0.0


class LearnedPulse:
    """Streaming learned rPPG of one stream: ``insert`` every frame, ``estimate`` any time.

    Memory is bounded to ``window_s`` + 2 s of pulse samples. ``estimate`` does not change
    the state.
    """

    def __init__(self, model: LearnedModel, *, window_s: float = 12.0,
                 min_window_s: float = 10.0, min_snr_db: float = MIN_SNR_DB, hold_s: float = 1.0,
                 warmup_s: float = 2.0, move_fraction: float = 0.02) -> None:
        if min_window_s > window_s:
            raise ValueError("min_window_s must not exceed window_s")
        self.model = model
        self.window_s, self.min_window_s = window_s, min_window_s
        self.min_snr_db, self.hold_s, self.warmup_s = min_snr_db, hold_s, warmup_s
        self.move_fraction = move_fraction
        self.reset()

    def reset(self) -> None:
        """Forget everything (another person, or a new clip)."""
        self._t: deque[float] = deque()
        self._bvp: deque[float] = deque()
        self._t0: float | None = None  # time of slot 0
        self._slot = 0  # next 30 Hz slot to fill
        self._state = self.model.initial_state()
        self._fresh = True  # the next step resets the model's state
        self._since_reset = 0  # slots stepped since the last reset
        self._kf: list[_Kalman1D] | None = None
        self._box: Box | None = None  # the crop box in use
        self._last_face_t: float | None = None
        self._last_t: float | None = None

    def insert(self, t_s: float, frame_bgr: np.ndarray, face: Any) -> None:
        """One frame and its face (a box x0, y0, x1, y1, landmarks, or None: no face).

        A frame not later than the previous one is ignored.
        """
        t_s = float(t_s)
        if self._last_t is not None and t_s <= self._last_t:
            return
        dt = t_s - self._last_t if self._last_t is not None else 1.0 / self.model.fps
        self._last_t = t_s
        box = box_of(face)
        if box is not None:
            self._track(box, dt)
            self._last_face_t = t_s
        elif self._last_face_t is None or t_s - self._last_face_t > self.hold_s:
            self._box = None
        if self._t0 is None:
            self._t0 = t_s
        slots = []
        while (self._slot - 0.3) / self.model.fps <= t_s - self._t0:  # open-rppg's rule
            slots.append(self._t0 + self._slot / self.model.fps)
            self._slot += 1
        if not slots:
            return
        crop = face_crop(frame_bgr, self._box, self.model.size) if self._box else None
        if crop is None:
            self._fresh, self._kf = True, None
            for t in slots:
                self._append(t, math.nan)
            return
        for t in slots:
            reset = np.array([1.0 if self._fresh else 0.0], np.float32)
            if self._fresh:
                self._state = self.model.initial_state()
                self._since_reset = 0
            y, self._state = self.model.step(crop[None], self._state, reset)
            self._fresh = False
            self._since_reset += 1
            warm = self._since_reset > self.warmup_s * self.model.fps
            self._append(t, float(y[0]) if warm else math.nan)

    def _track(self, box: Box, dt: float) -> None:
        if self._kf is None:
            self._kf = [_Kalman1D(v, ref_dt=1.0 / self.model.fps) for v in box]
            self._box = crop_box(box)
            return
        smooth = tuple(k.update(v, dt) for k, v in zip(self._kf, box))
        new = crop_box(smooth)  # type: ignore[arg-type]
        if self._box is None:
            self._box = new
            return
        size = max(self._box[2] - self._box[0], self._box[3] - self._box[1], 1.0)
        moved = max(abs((new[0] + new[2]) - (self._box[0] + self._box[2])),
                    abs((new[1] + new[3]) - (self._box[1] + self._box[3]))) / 2
        if moved > self.move_fraction * size:
            self._box = new

    def _append(self, t: float, v: float) -> None:
        self._t.append(t)
        self._bvp.append(v)
        horizon = t - self.window_s - 2.0
        while self._t and self._t[0] < horizon:
            self._t.popleft()
            self._bvp.popleft()

    def estimate(self, t_end_s: float) -> LearnedEstimate:
        """Heart rate and SNR from the pulse in (t_end_s - window_s, t_end_s]."""
        t_end_s = float(t_end_s)
        ts = np.fromiter(self._t, np.float64, len(self._t))
        sel = (ts > t_end_s - self.window_s) & (ts <= t_end_s)
        if not sel.any():
            return LearnedEstimate(t_end_s, None, None, "no data")
        x = np.fromiter(self._bvp, np.float64, len(self._bvp))[sel]
        ok = np.isfinite(x)
        if not ok.any():
            return LearnedEstimate(t_end_s, None, None, "no face")
        # longest run of finite samples
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
        starts, ends = edges[::2], edges[1::2]
        k = int(np.argmax(ends - starts))
        run = x[starts[k]:ends[k]]
        span = run.size / self.model.fps
        if span < self.min_window_s - 1e-6:
            return LearnedEstimate(t_end_s, None, None,
                                   f"not enough data ({span:.1f} s < {self.min_window_s:g} s)",
                                   span)
        f0, snr = spectral_peak(bandpass(run, self.model.fps), self.model.fps)
        quality = round(snr, 2) if math.isfinite(snr) else None
        if not snr >= self.min_snr_db:
            reason = (f"signal quality {snr:.1f} dB below threshold {self.min_snr_db:g} dB"
                      if math.isfinite(snr) else "no pulse signal")
            return LearnedEstimate(t_end_s, None, quality, reason, span)
        return LearnedEstimate(t_end_s, round(60.0 * f0, 2), quality, None, span)


def learned_heart_rates(frames: Iterable[tuple[float, np.ndarray]], faces: Iterable[Any],
                        model_path: str | Path | LearnedModel, *, window_s: float = 12.0,
                        min_window_s: float = 10.0, hop_s: float = 1.0,
                        min_snr_db: float = MIN_SNR_DB) -> list[LearnedEstimate]:
    """The learned model over a decoded clip, for benchmarks: an estimate every ``hop_s``
    from ``min_window_s`` on.

    frames: (capture time in s, BGR frame) in time order; faces: per frame a face box
    (x0, y0, x1, y1), landmarks (K, 2 or 3) or None; model_path: the ONNX file, a name
    (``facephys``) or a loaded ``LearnedModel``.
    """
    model = (model_path if isinstance(model_path, LearnedModel)
             else LearnedModel(resolve(str(model_path))))
    pulse = LearnedPulse(model, window_s=window_s, min_window_s=min_window_s,
                         min_snr_db=min_snr_db)
    out: list[LearnedEstimate] = []
    t_first = next_t = None
    for (t, frame), face in zip(frames, faces):
        if t_first is None:
            t_first = t
            next_t = t + min_window_s
        while next_t is not None and t > next_t:  # every window ending before this frame
            out.append(pulse.estimate(next_t))
            next_t += hop_s
        pulse.insert(t, frame, face)
    last = pulse._last_t
    while next_t is not None and last is not None and next_t <= last + 1e-9:
        out.append(pulse.estimate(next_t))
        next_t += hop_s
    return out
