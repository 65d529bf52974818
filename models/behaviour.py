"""Behavioural signals from face-mesh landmarks: blinks, head pose, mouth and brows.

Per frame (``BehaviourTracker.update``), from the 468 MediaPipe landmarks in frame pixels:

* **Eye aspect ratio** (Soukupová & Čech, "Real-time eye blink detection using facial
  landmarks", CVWW 2016): ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)`` per eye, about 0.25-0.35
  open and under 0.1 closed; independent of the face's size and of roll.
* **Blinks** (``BlinkDetector``): the EAR against an adaptive baseline of the open eye, with
  hysteresis and a plausible duration. See the class for the rules and why.
* **Head pose**: ``cv2.solvePnP`` (SQPnP, then Levenberg-Marquardt refinement) of the
  canonical face model points in ``models.facemesh`` against their landmarks, through a
  pinhole camera with focal length = frame width (a ~53 degree horizontal field of view, a
  typical webcam) and the principal point at the frame centre, no distortion. The angles are
  intrinsic yaw-pitch-roll (Y, X, Z) of the head relative to facing the camera: yaw > 0 when
  the face turns towards the image's right (the subject's left), pitch > 0 when it tilts up,
  roll > 0 when it tilts anticlockwise on screen. A wrong focal length mostly scales the
  distance, not the angles, for faces near the image centre.
* **Looking away**: |yaw| > 25 degrees or |pitch| > 20 degrees. Beyond about these angles the
  gaze has left a screen seen from a normal viewing distance (a 60 cm wide screen at 60 cm
  spans +-27 degrees horizontally, and less vertically), and the landmark model's accuracy
  on the far half of the face degrades too. The eyes can look away while the head does not:
  this is head pose, not gaze.
* **Mouth opening**: inner-lip gap (landmarks 13-14) over face height (forehead top 10 to
  chin 152); ~0 closed, ~0.05-0.1 speaking, 0.2+ yawning or gasping. The jaw lengthens the
  face as it opens, so the ratio grows a little less than linearly.
* **Brow lowering** (the corrugator action, AU4, of frowning and concentration): the mean
  distance of each brow's lower edge from the line through that eye's corners (not the lids,
  which move with blinks), over the inter-ocular distance (outer eye corners); relative to the
  person's own running median over ``brow_baseline_s`` (120 s) of frames facing the camera:
  ``(baseline - current) / baseline``, > 0 when the brows are lower than usual. A frown held
  for more than half of that time becomes the new normal.

``summarize_window`` aggregates frames and blinks over a window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models import facemesh

LOOK_AWAY_YAW_DEG = 25.0
LOOK_AWAY_PITCH_DEG = 20.0
BROW_BASELINE_EVERY_S = 0.5
_R0 = np.diag([1.0, -1.0, -1.0])  # canonical frame (x right, y up, z to camera) -> OpenCV camera


# ----------------------------------------------------------------------------- per frame


def _pts(landmarks: np.ndarray) -> np.ndarray:
    return np.asarray(landmarks, np.float64)[:, :2]


def eye_aspect_ratio(landmarks: np.ndarray, eye: Sequence[int]) -> float | None:
    """EAR of one eye given its six indices (p1..p6, e.g. ``facemesh.RIGHT_EYE_EAR``)."""
    p = _pts(landmarks)[list(eye)]
    width = float(np.linalg.norm(p[0] - p[3]))
    if not math.isfinite(width) or width <= 1e-6:
        return None
    ear = (np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width)
    return float(ear) if math.isfinite(ear) else None


def eye_aspect_ratios(landmarks: np.ndarray) -> tuple[float | None, float | None]:
    """(right eye, left eye) EAR; the subject's sides, as in ``models.facemesh``."""
    return (eye_aspect_ratio(landmarks, facemesh.RIGHT_EYE_EAR),
            eye_aspect_ratio(landmarks, facemesh.LEFT_EYE_EAR))


def mouth_opening(landmarks: np.ndarray) -> float | None:
    """Inner-lip gap over face height (forehead top to chin)."""
    p = _pts(landmarks)
    height = float(np.linalg.norm(p[facemesh.FOREHEAD_TOP] - p[facemesh.CHIN]))
    if not math.isfinite(height) or height <= 1e-6:
        return None
    gap = float(np.linalg.norm(p[facemesh.UPPER_LIP_INNER] - p[facemesh.LOWER_LIP_INNER]))
    return gap / height if math.isfinite(gap) else None


def brow_raise(landmarks: np.ndarray) -> float | None:
    """Mean brow-to-eye-line distance over the inter-ocular distance (both sides)."""
    p = _pts(landmarks)
    iod = float(np.linalg.norm(p[facemesh.RIGHT_EYE_OUTER] - p[facemesh.LEFT_EYE_OUTER]))
    if not math.isfinite(iod) or iod <= 1e-6:
        return None
    dists = []
    for brow, a, b in ((facemesh.RIGHT_BROW_LOWER, facemesh.RIGHT_EYE_OUTER,
                        facemesh.RIGHT_EYE_INNER),
                       (facemesh.LEFT_BROW_LOWER, facemesh.LEFT_EYE_OUTER,
                        facemesh.LEFT_EYE_INNER)):
        axis = p[b] - p[a]
        norm = float(np.linalg.norm(axis))
        if norm <= 1e-6:
            return None
        rel = p[list(brow)].mean(axis=0) - p[a]
        dists.append(abs(float(axis[0] * rel[1] - axis[1] * rel[0])) / norm)
    value = float(np.mean(dists)) / iod
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees (conventions in the module docstring) and where it was solved."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    rvec: np.ndarray  # OpenCV Rodrigues vector, canonical model -> camera
    tvec: np.ndarray  # canonical-model units (cm) in camera coordinates
    reprojection_px: float  # RMS reprojection error of the pose points

    @property
    def looking_away(self) -> bool:
        return abs(self.yaw_deg) > LOOK_AWAY_YAW_DEG or abs(self.pitch_deg) > LOOK_AWAY_PITCH_DEG


def camera_matrix(width: int, height: int) -> np.ndarray:
    """Pinhole intrinsics assumed for an uncalibrated webcam: f = width, centred."""
    f = float(width)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def euler_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of an OpenCV model->camera rotation of the canonical face."""
    m = _R0 @ rot  # the head's rotation expressed in the canonical frame
    yaw = math.degrees(math.atan2(m[0, 2], m[2, 2]))
    pitch = -math.degrees(math.asin(max(-1.0, min(1.0, -m[1, 2]))))
    roll = math.degrees(math.atan2(m[1, 0], m[1, 1]))
    return yaw, pitch, roll


def matrix_from_euler(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Inverse of euler_from_matrix: the OpenCV model->camera rotation for these angles."""
    a, b, c = (math.radians(v) for v in (yaw_deg, -pitch_deg, roll_deg))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return _R0 @ (ry @ rx @ rz)


def head_pose(landmarks: np.ndarray, frame_size: tuple[int, int]) -> HeadPose | None:
    """Head pose from the landmarks of one frame; frame_size is (width, height) in pixels."""
    img = _pts(landmarks)[list(facemesh.POSE_POINTS)]
    if not np.all(np.isfinite(img)):
        return None
    obj = facemesh.CANONICAL_POSE_3D
    k = camera_matrix(*frame_size)
    try:
        ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            return None
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, None, rvec, tvec)
    except cv2.error:
        return None
    if float(tvec[2, 0]) <= 0:  # behind the camera: not a face
        return None
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, None)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    rot, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = euler_from_matrix(rot)
    return HeadPose(yaw, pitch, roll, rvec.reshape(3), tvec.reshape(3), err)


# ----------------------------------------------------------------------------- blinks


@dataclass(frozen=True)
class BlinkEvent:
    """One eye closure: where the EAR crossed the closing threshold down and up, and its
    minimum. The duration is the time spent below the threshold (60 % of the open EAR), so
    it is shorter than the whole lid movement: 90-190 ms less for 200-350 ms blinks."""

    start_s: float
    end_s: float
    closed_s: float  # time of the lowest EAR (parabola through the lowest three samples)
    depth: float  # lowest EAR / open-eye baseline (0 = fully closed)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class BlinkDetector:
    """Streaming blink detector on the eye aspect ratio.

    Rules, and why:

    * **Adaptive baseline**: the open-eye EAR is the median of the samples taken while the
      eye was open over the last ``baseline_s`` seconds. It differs between people and
      drifts with head pitch and distance; a median ignores partial closures.
    * **Hysteresis**: a closure starts when the EAR falls below ``close_ratio`` x baseline
      (0.7: through face_landmark.onnx a fully painted-over eye on the synthetic clips reads
      only 63 % of its open EAR at 15 fps, as the model follows a lid part of the way)
      and ends when it rises above ``open_ratio`` x baseline, so landmark jitter around one
      threshold cannot split a blink or invent one. Start and end times are where the EAR
      crosses the closing threshold (linear interpolation between samples), one level for
      both, so the duration is not biased by the hysteresis gap.
    * **Duration**: ``min_duration_s`` <= duration <= ``max_duration_s``. Spontaneous blinks
      last 100-400 ms, but at 15 fps their time below the closing threshold can be a single
      frame (about 40 ms between the interpolated crossings, seen on the synthetic clips
      through the landmark model); a dip shorter than 20 ms is a glitch. A longer one is kept in
      ``long_closures``, not counted as a blink: eyes shut, or a downward glance, which also
      lowers the lids (the EAR cannot tell these two apart; head pitch and duration can). A
      quick glance down and back within a blink's duration cannot be told from a blink by
      the EAR alone.
    * **Lowered lids**: if the EAR stays under the closing threshold for ``rebaseline_s``
      while its median stays at or above ``min_open_ear`` (closed eyes are below ~0.1), the
      eye is taken to be open with lowered lids (reading, looking down): the baseline restarts
      from the new level and no event is reported.
    * **Gaps**: a gap in the EAR longer than ``max_gap_s`` (no face) cancels a closure in
      progress: its end is unknown. No detection during the first ``warmup_s`` of samples.
    """

    def __init__(self, *, close_ratio: float = 0.7, open_ratio: float = 0.85,
                 min_duration_s: float = 0.02, max_duration_s: float = 0.5,
                 baseline_s: float = 5.0, warmup_s: float = 1.0, rebaseline_s: float = 3.0,
                 min_open_ear: float = 0.12, max_gap_s: float = 0.3,
                 history_s: float = 300.0) -> None:
        if not 0 < close_ratio < open_ratio < 1:
            raise ValueError("need 0 < close_ratio < open_ratio < 1")
        self.close_ratio = close_ratio
        self.open_ratio = open_ratio
        self.min_duration_s = min_duration_s
        self.max_duration_s = max_duration_s
        self.baseline_s = baseline_s
        self.warmup_s = warmup_s
        self.rebaseline_s = rebaseline_s
        self.min_open_ear = min_open_ear
        self.max_gap_s = max_gap_s
        self.history_s = history_s
        self.blinks: deque[BlinkEvent] = deque()
        self.long_closures: deque[BlinkEvent] = deque()
        self._open: deque[tuple[float, float]] = deque()  # (t, ear) while open
        self._seen: deque[float] = deque()  # times of valid samples, for observed time
        self._first_t: float | None = None
        self._prev: tuple[float, float] | None = None
        self._closed = False
        self._start = 0.0
        self._up: float | None = None  # upward crossing of the closing threshold
        self._trace: list[tuple[float, float]] = []  # samples of the closure in progress
        self._base_at_close = 0.0

    @property
    def baseline(self) -> float | None:
        """Current open-eye EAR (None during warm-up)."""
        if not self._open or self._first_t is None:
            return None
        if self._open[-1][0] - self._first_t < self.warmup_s or len(self._open) < 5:
            return None
        return float(np.median([e for _, e in self._open]))

    def insert(self, t_s: float, ear: float | None) -> BlinkEvent | None:
        """Add one EAR sample (None: no face); returns a blink that ends with this sample."""
        if ear is None or not math.isfinite(ear):
            return None
        if self._prev is not None and t_s <= self._prev[0]:
            return None
        if self._prev is not None and t_s - self._prev[0] > self.max_gap_s:
            self._closed = False  # a closure in progress has an unknown end: drop it
            self._trace = []
            self._prev = None  # and nothing is interpolated across the gap
        if self._first_t is None:
            self._first_t = t_s
        self._seen.append(t_s)
        while self._seen and self._seen[0] < t_s - self.history_s:
            self._seen.popleft()
        for events in (self.blinks, self.long_closures):
            while events and events[0].end_s < t_s - self.history_s:
                events.popleft()
        event = self._step(t_s, ear)
        self._prev = (t_s, ear)
        return event

    def _step(self, t: float, ear: float) -> BlinkEvent | None:
        base = self.baseline
        if base is None:
            self._add_open(t, ear)
            return None
        lo = self.close_ratio * base
        prev = self._prev
        if not self._closed:
            if ear < lo:
                self._closed = True
                self._start = _cross(prev, (t, ear), lo) if prev is not None else t
                self._up = None
                self._trace = [prev, (t, ear)] if prev is not None else [(t, ear)]
                self._base_at_close = base
            else:
                self._add_open(t, ear)
            return None
        self._trace.append((t, ear))
        lo = self.close_ratio * self._base_at_close
        hi = self.open_ratio * self._base_at_close
        if ear < lo:
            self._up = None
            if t - self._start > self.rebaseline_s:
                recent = [e for s, e in self._trace if s >= t - 1.0]
                if float(np.median(recent)) >= self.min_open_ear:
                    self._closed = False
                    self._open.clear()
                    for s, e in self._trace:
                        if s >= t - self.baseline_s:
                            self._open.append((s, e))
                    self._trace = []
            return None
        if self._up is None and prev is not None:
            self._up = _cross(prev, (t, ear), lo)
        if ear < hi:
            return None
        self._closed = False
        end = self._up if self._up is not None else t
        event = self._event(self._start, end, self._trace, self._base_at_close)
        self._trace = []
        if event.duration_s > self.max_duration_s:
            self.long_closures.append(event)
            return None
        if event.duration_s < self.min_duration_s:
            return None
        self.blinks.append(event)
        return event

    def _add_open(self, t: float, ear: float) -> None:
        self._open.append((t, ear))
        while self._open and self._open[0][0] < t - self.baseline_s:
            self._open.popleft()

    @staticmethod
    def _event(start: float, end: float, trace: list[tuple[float, float]], base: float
               ) -> BlinkEvent:
        ts = np.array([s for s, _ in trace])
        es = np.array([e for _, e in trace])
        k = int(np.argmin(es))
        closed = float(ts[k])
        if 0 < k < len(es) - 1:
            a, b, c = es[k - 1:k + 2]
            den = a - 2 * b + c
            step = (ts[k + 1] - ts[k - 1]) / 2
            if den > 0:
                closed += float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) * step
        return BlinkEvent(start, end, closed, float(es[k] / base))

    def observed_s(self, t0: float, t1: float) -> float:
        """Seconds of [t0, t1] with EAR samples (gaps longer than max_gap_s excluded)."""
        ts = np.array([s for s in self._seen if t0 <= s <= t1])
        if ts.size < 2:
            return 0.0
        dt = np.diff(ts)
        return float(dt[dt <= self.max_gap_s].sum())

    def blinks_between(self, t0: float, t1: float) -> list[BlinkEvent]:
        """Blinks whose moment of closure lies in [t0, t1)."""
        return [b for b in self.blinks if t0 <= b.closed_s < t1]

    def rate_per_min(self, t0: float, t1: float, min_observed_s: float = 10.0) -> float | None:
        """Blinks per minute of observed time in [t0, t1]; None below min_observed_s."""
        observed = self.observed_s(t0, t1)
        if observed < min_observed_s:
            return None
        return 60.0 * len(self.blinks_between(t0, t1)) / observed


def _cross(a: tuple[float, float], b: tuple[float, float], level: float) -> float:
    """Time at which the segment from sample a to sample b crosses `level`."""
    (ta, ea), (tb, eb) = a, b
    if ea == eb:
        return tb
    return ta + (tb - ta) * float(np.clip((level - ea) / (eb - ea), 0.0, 1.0))


# ----------------------------------------------------------------------------- tracker


@dataclass(frozen=True)
class FrameBehaviour:
    """Behavioural measures of one frame; None where the face or a measure is missing."""

    t_s: float
    face: bool
    ear_right: float | None = None
    ear_left: float | None = None
    ear: float | None = None  # mean of the eyes present
    yaw_deg: float | None = None
    pitch_deg: float | None = None
    roll_deg: float | None = None
    looking_away: bool | None = None
    mouth_open: float | None = None
    brow_raise: float | None = None
    brow_lowering: float | None = None  # relative to the running baseline, > 0 = lowered


@dataclass(frozen=True)
class BehaviourSummary:
    """Aggregates over [t0_s, t1_s); None where no frame had the measure."""

    t0_s: float
    t1_s: float
    n_frames: int
    face_ratio: float | None
    blink_count: int
    blink_rate_per_min: float | None  # over [rate_t0_s, t1_s]
    rate_t0_s: float
    yaw_mean_deg: float | None
    pitch_mean_deg: float | None
    roll_mean_deg: float | None
    looking_away_ratio: float | None
    mouth_open_mean: float | None
    brow_lowering_mean: float | None
    ear_mean: float | None


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarize_window(frames: Sequence[FrameBehaviour], blinks: Sequence[BlinkEvent],
                     t0_s: float, t1_s: float, *, rate_window_s: float | None = 60.0,
                     min_rate_s: float = 10.0, max_gap_s: float = 0.3) -> BehaviourSummary:
    """Window aggregates. The blink rate needs a longer view than a few-second window, so it
    counts blinks over the last ``rate_window_s`` seconds (or the window itself if None)
    per minute of time with a face, and is None with less than ``min_rate_s`` of it."""
    inside = [f for f in frames if t0_s <= f.t_s < t1_s]
    faces = [f for f in inside if f.face]
    rate_t0 = t0_s if rate_window_s is None else min(t0_s, t1_s - rate_window_s)
    face_t = np.array([f.t_s for f in frames if f.face and rate_t0 <= f.t_s < t1_s])
    dt = np.diff(face_t)
    observed = float(dt[dt <= max_gap_s].sum()) if face_t.size > 1 else 0.0
    n_rate = sum(1 for b in blinks if rate_t0 <= b.closed_s < t1_s)
    away = [f.looking_away for f in faces if f.looking_away is not None]
    return BehaviourSummary(
        t0_s=t0_s, t1_s=t1_s, n_frames=len(inside),
        face_ratio=(len(faces) / len(inside)) if inside else None,
        blink_count=sum(1 for b in blinks if t0_s <= b.closed_s < t1_s),
        blink_rate_per_min=60.0 * n_rate / observed if observed >= min_rate_s else None,
        rate_t0_s=rate_t0,
        yaw_mean_deg=_mean([f.yaw_deg for f in faces]),
        pitch_mean_deg=_mean([f.pitch_deg for f in faces]),
        roll_mean_deg=_mean([f.roll_deg for f in faces]),
        looking_away_ratio=float(np.mean(away)) if away else None,
        mouth_open_mean=_mean([f.mouth_open for f in faces]),
        brow_lowering_mean=_mean([f.brow_lowering for f in faces]),
        ear_mean=_mean([f.ear for f in faces]),
    )


class BehaviourTracker:
    """Per-stream state: blink detector, brow baseline and a bounded history of frames."""

    def __init__(self, *, blink_detector: BlinkDetector | None = None,
                 brow_baseline_s: float = 120.0, history_s: float = 120.0) -> None:
        self.blinks = blink_detector or BlinkDetector()
        self.brow_baseline_s = brow_baseline_s
        self.history_s = history_s
        self.frames: deque[FrameBehaviour] = deque()
        self._brow: deque[tuple[float, float]] = deque()
        self._brow_base: tuple[float, float] | None = None  # (when, median) last computed

    def update(self, t_s: float, landmarks: np.ndarray | None,
               frame_size: tuple[int, int]) -> FrameBehaviour:
        """Measure one frame (landmarks None: no face); frame_size is (width, height)."""
        if landmarks is None:
            fb = FrameBehaviour(t_s, False)
            self.blinks.insert(t_s, None)
        else:
            er, el = eye_aspect_ratios(landmarks)
            ear = _mean([er, el])
            self.blinks.insert(t_s, ear)
            pose = head_pose(landmarks, frame_size)
            away = pose.looking_away if pose is not None else None
            raise_ = brow_raise(landmarks)
            lowering = None
            if raise_ is not None:
                if away is False:
                    self._brow.append((t_s, raise_))
                while self._brow and self._brow[0][0] < t_s - self.brow_baseline_s:
                    self._brow.popleft()
                if len(self._brow) >= 5:
                    base = self._brow_baseline(t_s)
                    lowering = (base - raise_) / base if base > 0 else None
            fb = FrameBehaviour(
                t_s, True, er, el, ear,
                pose.yaw_deg if pose else None, pose.pitch_deg if pose else None,
                pose.roll_deg if pose else None, away, mouth_opening(landmarks), raise_,
                lowering)
        self.frames.append(fb)
        while self.frames and self.frames[0].t_s < t_s - self.history_s:
            self.frames.popleft()
        return fb

    def _brow_baseline(self, t_s: float) -> float:
        """The median of the baseline's samples, recomputed every BROW_BASELINE_EVERY_S:
        a median of two minutes moves little in a fraction of a second, and recomputing it
        every frame cost as much as the head pose."""
        if self._brow_base is None or t_s - self._brow_base[0] >= BROW_BASELINE_EVERY_S \
                or t_s < self._brow_base[0]:
            self._brow_base = (t_s, float(np.median([v for _, v in self._brow])))
        return self._brow_base[1]

    def summary(self, t0_s: float, t1_s: float, rate_window_s: float | None = 60.0
                ) -> BehaviourSummary:
        """summarize_window over this tracker's frames and blinks."""
        return summarize_window(list(self.frames), list(self.blinks.blinks), t0_s, t1_s,
                                rate_window_s=rate_window_s,
                                max_gap_s=self.blinks.max_gap_s)
