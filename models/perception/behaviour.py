"""Behavioural signals from face-mesh landmarks: blinks, head pose, mouth and brows.

Per frame (``BehaviourTracker.update``), from the 468 MediaPipe landmarks in frame pixels:

* **Eye aspect ratio** (Soukupová & Čech, "Real-time eye blink detection using facial
  landmarks", CVWW 2016): ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)`` per eye, about 0.25-0.35
  open and under 0.1 closed; independent of the face's size and of roll.
* **Blinks** (``BlinkDetector``): the EAR and each eye region's appearance
  (``EyeAppearance``: how unlike its own open-eye template the region looks), each against an
  adaptive baseline of the open eye, combined, with hysteresis and a plausible duration. The
  appearance is what finds blinks the landmark model does not follow (issue 15: 0 of 12 by
  the EAR alone on another face). See the classes for the rules and the figures behind them.
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

from wellmon.models.perception import facemesh

LOOK_AWAY_YAW_DEG = 25.0
LOOK_AWAY_PITCH_DEG = 20.0
BROW_BASELINE_EVERY_S = 0.5
APP_BASELINE_EVERY_S = 0.25  # a median of 5 s moves little in a quarter second
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


# ----------------------------------------------------------------------------- eye appearance


class EyeAppearance:
    """How different one eye's region looks from its own open-eye template, per frame.

    The region is cut along the line through the eye's corners (``facemesh`` ``*_EYE_OUTER``
    and ``*_EYE_INNER``), which the lids do not move: ``box_x`` x ``box_y`` of the corner
    distance (0.2 beyond each corner, 0.35 above and 0.3 below the corner line: the open
    eye and its lids, not the brow), warped with ``cv2.warpAffine`` to ``size`` pixels, so
    head distance and roll do not change it, then made grey and lightly blurred. The
    template is a running mean (time constant ``tau_s``) of the crops of frames the blink
    detector calls open; ``BehaviourTracker`` decides when to ``learn`` and ``reset``.

    The measure is ``1 - max NCC`` of the template over the crop searched ``search_px``
    pixels either way (``cv2.matchTemplate``, ``TM_CCOEFF_NORMED``): normalised
    cross-correlation ignores gain and offset, so a lighting drift does not change it, and
    the search absorbs the landmarks' jitter and lag under head motion: 6 crop pixels, 0.3 of
    the corner distance, because under heavy motion (20 px at up to 1.5 Hz, the synthetic
    matrix) the corners stray up to that far from their path for a frame; with 2 pixels,
    such frames invented blinks (1 at 15 fps on 9 heavy-motion tune clips, none with 6).
    On the open eye it costs little: the other eye parts are in the template. Anything
    static on the face (a glasses rim across the box, a lens glare that moves with it) is
    part of the template. A lid coming down replaces the iris, sclera and lash line by
    skin, whatever its colour or texture (painted lids the landmark model does not follow,
    dark or pale lids), so the measure rises for all of them; its sign-free nature is why
    it is used rather than the mean grey level, which rises for a pale lid over a dark iris
    and falls for a dark one.
    """

    def __init__(self, *, size: tuple[int, int] = (28, 13), search_px: int = 6,
                 box_x: tuple[float, float] = (-0.2, 1.2),
                 box_y: tuple[float, float] = (-0.35, 0.30), tau_s: float = 1.0) -> None:
        self.size = size
        self.search_px = search_px
        self.box_x = box_x
        self.box_y = box_y
        self.tau_s = tau_s
        self.template: np.ndarray | None = None
        self._crop: np.ndarray | None = None  # the last frame's search crop
        self._t: float | None = None  # when the template last learnt

    def crop(self, image: np.ndarray, left: np.ndarray, right: np.ndarray
             ) -> np.ndarray | None:
        """The search crop (size + 2 search_px each way) of the eye whose corners are left
        and right on screen; None if they are degenerate."""
        left, right = np.asarray(left, np.float64)[:2], np.asarray(right, np.float64)[:2]
        u = right - left
        d = float(np.hypot(u[0], u[1]))
        if not math.isfinite(d) or d < 4.0:
            return None
        w, h = self.size
        s = self.search_px
        k = d * (self.box_x[1] - self.box_x[0]) / w  # frame pixels per crop pixel
        eu = u / d
        ev = np.array([-eu[1], eu[0]])  # down on an upright face
        origin = (left + eu * (self.box_x[0] * d - s * k)
                  + ev * (self.box_y[0] * d - s * k))
        m = np.array([[eu[0] * k, ev[0] * k, origin[0]], [eu[1] * k, ev[1] * k, origin[1]]],
                     np.float64)
        out = cv2.warpAffine(image, m, (w + 2 * s, h + 2 * s),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
        if out.ndim == 3:
            out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(out.astype(np.float32), (3, 3), 0.7)

    def measure(self, image: np.ndarray, left: np.ndarray, right: np.ndarray
                ) -> float | None:
        """1 - best NCC of the template in this frame's crop (None: no template or crop)."""
        self._crop = self.crop(image, left, right)
        if self._crop is None or self.template is None:
            return None
        res = cv2.matchTemplate(self._crop, self.template, cv2.TM_CCOEFF_NORMED)
        best = float(res.max())
        return 1.0 - best if math.isfinite(best) else None

    def learn(self, t_s: float) -> None:
        """Blend the last measured crop into the template (the eye is open)."""
        if self._crop is None:
            return
        s = self.search_px
        centre = self._crop[s:s + self.size[1], s:s + self.size[0]]
        if self.template is None or self._t is None or t_s <= self._t:
            self.template = centre.copy()
        else:
            a = 1.0 - math.exp(-(t_s - self._t) / self.tau_s)
            self.template += a * (centre - self.template)
        self._t = t_s

    def reset(self) -> None:
        """Forget the template: the next open frame starts a new one."""
        self.template = None
        self._t = None


# ----------------------------------------------------------------------------- blinks


@dataclass(frozen=True)
class BlinkEvent:
    """One eye closure. ``start_s``/``end_s``: where the combined evidence crossed the
    closing level (1) up and down; ``onset_s``: where it first rose through
    ``onset_fraction`` of its peak before that (the lid starting to move; the time reported
    in ``signals.blink_times``); ``closed_s``: its peak. ``depth``: the lowest EAR over the
    open-eye EAR (1 when the landmarks did not follow the lid; 0 = fully closed);
    ``evidence``: the peak combined evidence."""

    start_s: float
    end_s: float
    closed_s: float
    depth: float
    onset_s: float | None = None
    evidence: float = 1.0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def time_s(self) -> float:
        """The blink's reported time: its onset."""
        return self.start_s if self.onset_s is None else self.onset_s


class BlinkDetector:
    """Streaming blink detector on two kinds of evidence: the eye aspect ratio and the eye
    region's appearance (``EyeAppearance``), each against its own running open-eye baseline.

    Rules, and why:

    * **Two channels, one scale.** The landmark model does not always follow a lid: on the
      bundled face it reads a painted-over eye at 63 % of its open EAR, and on other faces
      (issue 15: another portrait, a face with glasses) hardly at all, so an EAR threshold
      alone found 0 of 12 blinks. The region's pixels do change. Each channel becomes an
      *evidence* that is 1 at its closing threshold: EAR ``(1 - ear/baseline) / (1 -
      close_ratio)`` (so 1 at 0.7 x the open EAR, as before); appearance ``(d - median) /
      (app_z x max(1.4826 MAD, app_floor))`` per eye, over the median and MAD of ``d`` on
      open frames, averaged over the two eyes (a missing eye counts 0), so one eye alone
      must change twice as much as two eyes agreeing. The combined evidence is the larger of
      the two channels: either alone is enough, and neither's noise is added to the other's.
      ``app_z`` = 6 and ``app_floor`` = 0.01 put 1 between the open and the closed eye: on
      the 27 "tune" clips of ``streamer.synthetic_matrix`` (skin tones, eyelids, glasses,
      face sizes, still to heavy motion) through the landmark model, the appearance
      evidence of open frames reached at most 0.66 (single-frame landmark glitches under
      heavy motion aside: 1.75), and the weakest blink peaked at 3.0 (median about 8).
    * **Adaptive baselines**: medians (and MAD) of the samples taken while the eye was open
      over the last ``baseline_s`` seconds. They differ between people, faces and cameras
      and drift with head pitch, distance and light; a median ignores partial closures.
      ``app_floor`` keeps a very clean video's tiny MAD from making noise look like a blink.
    * **Hysteresis**: a closure starts when the evidence reaches 1 and ends when it falls
      under ``open_level`` (0.5; for the EAR that is 0.85 x baseline, as before), so jitter
      around one level cannot split a blink or invent one. Start and end are where the
      evidence crosses 1 (interpolated), so the duration is not biased by the hysteresis gap.
    * **Onset** (``BlinkEvent.onset_s``): where the evidence, going back from the crossing
      of 1, last rose through ``onset_fraction`` (5 %) of its peak, or ``onset_floor``
      (0.3, about the open-eye noise) if higher (interpolated). The lid starts moving
      before the threshold is crossed; on the tune clips this put the onset 0-20 ms after
      the true start on average (20 % of the peak: 20-35 ms).
    * **Duration**: ``min_duration_s`` <= time above 1 <= ``max_duration_s``. Spontaneous
      blinks last 100-400 ms (50-500 ms plausible); at 15 fps the time above the closing
      level of a short one can be a single frame (about 40 ms between interpolated
      crossings); a dip shorter than 20 ms is a glitch. And a closure must hold at least
      ``round(min_closed_s x frame rate)`` samples at or above 1: one at 15 fps, two at 30,
      where a blink spans six frames or more and a single frame is a landmark glitch (the
      two such glitches of the tune clips at 30 fps). A longer one is kept in
      ``long_closures``, not counted as a blink: eyes shut, or a downward glance.
    * **Lowered lids / a new look**: if the evidence stays at 1 or more for
      ``rebaseline_s`` and the EAR (if any) stays at or above ``min_open_ear`` (closed eyes
      are below ~0.1), the eye is taken to be open but different (lowered lids while
      reading, a gaze held elsewhere, glasses put on): the baselines restart from the new
      level, ``rebaselines`` counts up (the tracker then renews its templates) and no event is
      reported.
    * **Gaps**: a gap longer than ``max_gap_s`` (no face) cancels a closure in progress: its
      end is unknown. No detection during the first ``warmup_s`` of samples of a channel.
    """

    def __init__(self, *, close_ratio: float = 0.7, open_ratio: float = 0.85,
                 app_z: float = 6.0, app_floor: float = 0.01, onset_fraction: float = 0.05,
                 onset_floor: float = 0.3, min_duration_s: float = 0.02,
                 max_duration_s: float = 0.5, min_closed_s: float = 0.05,
                 baseline_s: float = 5.0, warmup_s: float = 1.0, rebaseline_s: float = 3.0,
                 min_open_ear: float = 0.12, max_gap_s: float = 0.3,
                 history_s: float = 300.0) -> None:
        if not 0 < close_ratio < open_ratio < 1:
            raise ValueError("need 0 < close_ratio < open_ratio < 1")
        self.close_ratio = close_ratio
        self.open_ratio = open_ratio
        self.open_level = (1 - open_ratio) / (1 - close_ratio)
        self.app_z = app_z
        self.app_floor = app_floor
        self.onset_fraction = onset_fraction
        self.onset_floor = onset_floor
        self.min_duration_s = min_duration_s
        self.max_duration_s = max_duration_s
        self.min_closed_s = min_closed_s
        self.baseline_s = baseline_s
        self.warmup_s = warmup_s
        self.rebaseline_s = rebaseline_s
        self.min_open_ear = min_open_ear
        self.max_gap_s = max_gap_s
        self.history_s = history_s
        self.blinks: deque[BlinkEvent] = deque()
        self.long_closures: deque[BlinkEvent] = deque()
        self.rebaselines = 0
        self.evidence = 0.0  # of the last sample
        self._open: deque[tuple[float, float]] = deque()  # (t, ear) while open
        self._app: list[deque[tuple[float, float]]] = []  # per eye (t, d) while open
        self._app_first: list[float | None] = []
        self._app_base: list[tuple[float, float] | None] = []  # (median, scale) per eye
        self._app_base_t: list[float] = []  # when each was computed
        self._seen: deque[float] = deque()  # times of valid samples, for observed time
        self._recent: deque[tuple[float, float, float | None]] = deque()  # (t, ev, ear)
        self._first_t: float | None = None
        self._prev: tuple[float, float] | None = None  # (t, evidence)
        self._closed = False
        self._start = 0.0
        self._up: float | None = None  # downward crossing of the closing level
        self._trace: list[tuple[float, float, float | None]] = []  # the closure's samples
        self._trace_done: list[tuple[float, float, float | None]] = []  # the last closure's
        self._ear_base_at_close: float | None = None

    @property
    def closed(self) -> bool:
        """Whether a closure is in progress."""
        return self._closed

    @property
    def baseline(self) -> float | None:
        """Current open-eye EAR (None during warm-up)."""
        if not self._open or self._first_t is None:
            return None
        if self._open[-1][0] - self._first_t < self.warmup_s or len(self._open) < 5:
            return None
        return float(np.median([e for _, e in self._open]))

    def insert(self, t_s: float, ear: float | None,
               appearance: Sequence[float | None] | None = None) -> BlinkEvent | None:
        """Add one frame: its EAR (None: no landmarks) and its eyes' appearance measures
        (``EyeAppearance.measure``, None where missing); returns a blink that ends here."""
        if ear is not None and not math.isfinite(ear):
            ear = None
        app = [a if a is not None and math.isfinite(a) else None for a in (appearance or ())]
        if ear is None and not any(a is not None for a in app):
            return None
        if self._prev is not None and t_s <= self._prev[0]:
            return None
        if self._prev is not None and t_s - self._prev[0] > self.max_gap_s:
            self._closed = False  # a closure in progress has an unknown end: drop it
            self._trace = []
            self._recent.clear()
            self._prev = None  # and nothing is interpolated across the gap
        if self._first_t is None:
            self._first_t = t_s
        self._seen.append(t_s)
        while self._seen and self._seen[0] < t_s - self.history_s:
            self._seen.popleft()
        for events in (self.blinks, self.long_closures):
            while events and events[0].end_s < t_s - self.history_s:
                events.popleft()
        ev = self._evidence(t_s, ear, app)
        self.evidence = ev
        event = self._step(t_s, ev, ear, app)
        self._prev = (t_s, ev)
        self._recent.append((t_s, ev, ear))
        while self._recent and self._recent[0][0] < t_s - 1.0:
            self._recent.popleft()
        return event

    # --- evidence

    def _evidence(self, t: float, ear: float | None, app: list[float | None]) -> float:
        base = self._ear_base_at_close if self._closed else self.baseline
        ear_ev = (1.0 - ear / base) / (1.0 - self.close_ratio) \
            if ear is not None and base else None
        while len(self._app) < len(app):
            self._app.append(deque())
            self._app_first.append(None)
            self._app_base.append(None)
            self._app_base_t.append(-math.inf)
        per_eye = []
        for i, d in enumerate(app):
            if self._app_first[i] is None and d is not None:
                self._app_first[i] = t
            if not self._closed and (self._app_base[i] is None
                                     or not 0 <= t - self._app_base_t[i] < APP_BASELINE_EVERY_S):
                self._app_base[i] = self._app_baseline(i, t)
                self._app_base_t[i] = t
            base_i = self._app_base[i]
            per_eye.append(0.0 if d is None or base_i is None
                           else (d - base_i[0]) / (self.app_z * base_i[1]))
        app_ev = float(np.mean(per_eye)) if any(b is not None for b in self._app_base) \
            and per_eye else None
        values = [v for v in (ear_ev, app_ev) if v is not None]
        return max(values) if values else 0.0

    def _app_baseline(self, i: int, t: float) -> tuple[float, float] | None:
        samples = self._app[i]
        first = self._app_first[i]
        if first is None or len(samples) < 5 or samples[-1][0] - first < self.warmup_s:
            return None
        ds = np.fromiter((d for _, d in samples), np.float64, len(samples))
        med = float(np.median(ds))
        mad = float(np.median(np.abs(ds - med))) * 1.4826
        return med, max(mad, self.app_floor)

    def _add_open(self, t: float, ear: float | None, app: list[float | None]) -> None:
        if ear is not None:
            self._open.append((t, ear))
        while self._open and self._open[0][0] < t - self.baseline_s:
            self._open.popleft()
        for i, d in enumerate(app):
            if d is not None:
                self._app[i].append((t, d))
        for samples in self._app:
            while samples and samples[0][0] < t - self.baseline_s:
                samples.popleft()

    # --- state machine

    def _warm(self) -> bool:
        return self.baseline is not None or any(b is not None for b in self._app_base)

    def _step(self, t: float, ev: float, ear: float | None, app: list[float | None]
              ) -> BlinkEvent | None:
        prev = self._prev
        if not self._warm():
            self._add_open(t, ear, app)
            return None
        if not self._closed:
            if ev >= 1.0:
                self._closed = True
                self._start = _cross(prev, (t, ev), 1.0) if prev is not None else t
                self._up = None
                self._trace = list(self._recent) + [(t, ev, ear)]
                self._ear_base_at_close = self.baseline
            else:
                self._add_open(t, ear, app)
            return None
        self._trace.append((t, ev, ear))
        if ev >= 1.0:
            self._up = None
            if t - self._start > self.rebaseline_s:
                ears = [e for s, _, e in self._trace if s >= t - 1.0 and e is not None]
                if not ears or float(np.median(ears)) >= self.min_open_ear:
                    self._rebaseline(t, app)
            return None
        if self._up is None and prev is not None:
            self._up = _cross(prev, (t, ev), 1.0)
        if ev >= self.open_level:
            return None
        self._closed = False
        end = self._up if self._up is not None else t
        event = self._event(self._start, end, self._trace, self._ear_base_at_close)
        self._trace_done, self._trace = self._trace, []
        if event.duration_s > self.max_duration_s:
            self.long_closures.append(event)
            return None
        if event.duration_s < self.min_duration_s or not self._long_enough(event):
            return None
        self.blinks.append(event)
        return event

    def _long_enough(self, event: BlinkEvent) -> bool:
        """At least round(min_closed_s x frame rate) samples at or above the closing level
        (1 at 15 fps, 2 at 30 fps): a single frame at 30 fps is a landmark glitch."""
        ts = [s for s, _, _ in self._trace_done]
        if len(ts) < 2:
            return True
        rate = 1.0 / float(np.median(np.diff(ts)))
        above = sum(1 for s, v, _ in self._trace_done
                    if event.start_s <= s <= event.end_s + 1e-9 and v >= 1.0)
        return above >= max(1, round(self.min_closed_s * rate))

    def _rebaseline(self, t: float, app: list[float | None]) -> None:
        """The eye has looked different for rebaseline_s: that is its new open look."""
        self._closed = False
        self._open.clear()
        for s, _, e in self._trace:
            if s >= t - self.baseline_s and e is not None:
                self._open.append((s, e))
        for i in range(len(self._app)):
            self._app[i].clear()
            self._app_first[i] = None
            self._app_base[i] = None
            self._app_base_t[i] = -math.inf
        self._trace = []
        self.rebaselines += 1

    def _event(self, start: float, end: float, trace: list[tuple[float, float, float | None]],
               ear_base: float | None) -> BlinkEvent:
        ts = np.array([s for s, _, _ in trace])
        evs = np.array([v for _, v, _ in trace])
        inside = np.flatnonzero(ts >= start - 1e-9)
        k = int(inside[np.argmax(evs[inside])]) if inside.size else int(np.argmax(evs))
        peak = float(evs[k])
        closed = float(ts[k])
        if 0 < k < len(evs) - 1:
            a, b, c = evs[k - 1:k + 2]
            den = a - 2 * b + c
            step = (ts[k + 1] - ts[k - 1]) / 2
            if den < 0:
                closed += float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) * step
        level = min(max(self.onset_fraction * peak, self.onset_floor), 1.0)
        onset = ts[0]
        j = k
        while j > 0 and evs[j - 1] >= level:
            j -= 1
        if j > 0:
            onset = _cross((ts[j - 1], evs[j - 1]), (ts[j], evs[j]), level)
        else:
            onset = float(ts[0])
        ears = [e for s, _, e in trace if e is not None and start <= s <= end + 1e-9]
        depth = (min(ears) / ear_base) if ears and ear_base else 1.0
        return BlinkEvent(start, end, closed, float(depth), float(min(onset, start)), peak)

    def observed_s(self, t0: float, t1: float) -> float:
        """Seconds of [t0, t1] with samples (gaps longer than max_gap_s excluded)."""
        ts = np.array([s for s in self._seen if t0 <= s <= t1])
        if ts.size < 2:
            return 0.0
        dt = np.diff(ts)
        return float(dt[dt <= self.max_gap_s].sum())

    def blinks_between(self, t0: float, t1: float) -> list[BlinkEvent]:
        """Blinks whose onset lies in [t0, t1)."""
        return [b for b in self.blinks if t0 <= b.time_s < t1]

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
    blink_count: int  # == len(blink_times_s)
    blink_rate_per_min: float | None  # over [rate_t0_s, t1_s]
    rate_t0_s: float
    yaw_mean_deg: float | None
    pitch_mean_deg: float | None
    roll_mean_deg: float | None
    looking_away_ratio: float | None
    mouth_open_mean: float | None
    brow_lowering_mean: float | None
    ear_mean: float | None
    blink_times_s: tuple[float, ...] = ()  # onsets of the blinks in [t0_s, t1_s), in order


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarize_window(frames: Sequence[FrameBehaviour], blinks: Sequence[BlinkEvent],
                     t0_s: float, t1_s: float, *, rate_window_s: float | None = 60.0,
                     min_rate_s: float = 10.0, max_gap_s: float = 0.3) -> BehaviourSummary:
    """Window aggregates. A blink belongs to the window that holds its onset
    (``BlinkEvent.time_s``), the time reported, so the count, the rate and the list of times
    agree. The blink rate needs a longer view than a few-second window, so it counts blinks
    over the last ``rate_window_s`` seconds (or the window itself if None) per minute of
    time with a face, and is None with less than ``min_rate_s`` of it."""
    inside = [f for f in frames if t0_s <= f.t_s < t1_s]
    faces = [f for f in inside if f.face]
    rate_t0 = t0_s if rate_window_s is None else min(t0_s, t1_s - rate_window_s)
    face_t = np.array([f.t_s for f in frames if f.face and rate_t0 <= f.t_s < t1_s])
    dt = np.diff(face_t)
    observed = float(dt[dt <= max_gap_s].sum()) if face_t.size > 1 else 0.0
    n_rate = sum(1 for b in blinks if rate_t0 <= b.time_s < t1_s)
    times = tuple(sorted(b.time_s for b in blinks if t0_s <= b.time_s < t1_s))
    away = [f.looking_away for f in faces if f.looking_away is not None]
    return BehaviourSummary(
        t0_s=t0_s, t1_s=t1_s, n_frames=len(inside),
        face_ratio=(len(faces) / len(inside)) if inside else None,
        blink_count=len(times),
        blink_rate_per_min=60.0 * n_rate / observed if observed >= min_rate_s else None,
        rate_t0_s=rate_t0,
        yaw_mean_deg=_mean([f.yaw_deg for f in faces]),
        pitch_mean_deg=_mean([f.pitch_deg for f in faces]),
        roll_mean_deg=_mean([f.roll_deg for f in faces]),
        looking_away_ratio=float(np.mean(away)) if away else None,
        mouth_open_mean=_mean([f.mouth_open for f in faces]),
        brow_lowering_mean=_mean([f.brow_lowering for f in faces]),
        ear_mean=_mean([f.ear for f in faces]),
        blink_times_s=times,
    )


class BehaviourTracker:
    """Per-stream state: blink detector, brow baseline and a bounded history of frames."""

    def __init__(self, *, blink_detector: BlinkDetector | None = None,
                 brow_baseline_s: float = 120.0, history_s: float = 120.0,
                 appearance: bool = True) -> None:
        self.blinks = blink_detector or BlinkDetector()
        # the subject's right eye (viewer's left), then the left; corners left, right on screen
        self.eyes = ([(EyeAppearance(), facemesh.RIGHT_EYE_OUTER, facemesh.RIGHT_EYE_INNER),
                      (EyeAppearance(), facemesh.LEFT_EYE_INNER, facemesh.LEFT_EYE_OUTER)]
                     if appearance else [])
        self._rebaselines = 0
        self.brow_baseline_s = brow_baseline_s
        self.history_s = history_s
        self.frames: deque[FrameBehaviour] = deque()
        self._brow: deque[tuple[float, float]] = deque()
        self._brow_base: tuple[float, float] | None = None  # (when, median) last computed

    def update(self, t_s: float, landmarks: np.ndarray | None,
               frame_size: tuple[int, int], image: np.ndarray | None = None
               ) -> FrameBehaviour:
        """Measure one frame (landmarks None: no face); frame_size is (width, height);
        image, the frame (BGR or grey, uint8), lets blinks be seen in the eyes' pixels too
        (without it only the EAR is used)."""
        if landmarks is None:
            fb = FrameBehaviour(t_s, False)
            self.blinks.insert(t_s, None)
        else:
            er, el = eye_aspect_ratios(landmarks)
            ear = _mean([er, el])
            self._blink_step(t_s, landmarks, ear, image)
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

    def _blink_step(self, t_s: float, landmarks: np.ndarray, ear: float | None,
                    image: np.ndarray | None) -> None:
        """The blink detector's sample of this frame; the eyes' templates learn from frames
        it calls open (evidence under its open level) and restart when it rebaselines."""
        looks: list[float | None] = []
        if image is not None:
            pts = _pts(landmarks)
            looks = [eye.measure(image, pts[a], pts[b]) for eye, a, b in self.eyes]
        self.blinks.insert(t_s, ear, looks)
        if self.blinks.rebaselines != self._rebaselines:
            self._rebaselines = self.blinks.rebaselines
            for eye, _, _ in self.eyes:
                eye.reset()
        if image is not None and not self.blinks.closed \
                and self.blinks.evidence < self.blinks.open_level:
            for eye, _, _ in self.eyes:
                eye.learn(t_s)

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
