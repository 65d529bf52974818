"""The face pipeline: detection, tracking, 468 landmarks and expression, batched.

Per stream the largest face is tracked: BlazeFace runs on a frame when the
stream has no face or every `detect_every` frames; in between the region of
interest comes from the previous frame's landmarks, as MediaPipe's face mesh
does. All frames handed to `process()` in one call (from every stream) go
through each model in one batched onnxruntime call: detection for the frames
that need it, landmarks for every region, expression for every face found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wellmon.models import WEIGHTS
from wellmon.models.perception import blazeface
from wellmon.models.perception.runtime import load_session, provider_of

LANDMARK_SIZE = 192
EXPRESSION_SIZE = 64
ROI_SCALE = 1.5  # MediaPipe's face-mesh region: 1.5 × the face, square
EXPRESSION_MARGIN = 0.1  # fer pads its face boxes by 10 px on ~100 px faces
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EYE_OUTER = (33, 263)  # mesh points that set the face's roll for the next region


@dataclass(frozen=True)
class Region:
    """A rotated square around a face, in frame pixels; angle in radians (roll)."""

    cx: float
    cy: float
    size: float
    angle: float

    def to_crop(self, out_size: int) -> np.ndarray:
        """2×3 affine that maps the frame onto an upright out_size² crop of the region."""
        scale = out_size / self.size
        cos, sin = math.cos(-self.angle) * scale, math.sin(-self.angle) * scale
        return np.array([[cos, -sin, out_size / 2 - cos * self.cx + sin * self.cy],
                         [sin, cos, out_size / 2 - sin * self.cx - cos * self.cy]], np.float32)


@dataclass
class Face:
    """What the pipeline saw of one frame's face (all coordinates in frame pixels)."""

    present: bool
    confidence: float = 0.0
    landmarks: np.ndarray | None = None  # (468, 3): x, y in pixels, z in pixels (relative)
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 of the landmarks
    expression: np.ndarray | None = None  # (7,) probabilities in EMOTIONS order


@dataclass
class FaceTrack:
    """Where one stream's face was in its last frame; owned by the stream (one per stream),
    so that forgetting the stream forgets its face."""

    region: Region | None = None
    since_detect: int = 0


@dataclass
class FacePipeline:
    providers: list[str]
    threads: int = 0
    detect_every: int = 10
    min_detection: float = 0.5
    min_presence: float = 0.5
    weights: Path = WEIGHTS

    def __post_init__(self) -> None:
        self.detector = load_session(self.weights / "face_detection_short_range.onnx",
                                     {"input": 4}, providers=self.providers,
                                     threads=self.threads)
        self.landmarker = load_session(self.weights / "face_landmark.onnx", {"input": 4},
                                       providers=self.providers, threads=self.threads)
        self.expression = load_session(self.weights / "emotion_minixception.onnx",
                                       {"input": 4}, providers=self.providers,
                                       threads=self.threads)

    @property
    def provider(self) -> str:
        return provider_of(self.landmarker)

    def process(self, frames: list[tuple[FaceTrack, np.ndarray]]) -> list[Face]:
        """One Face per (stream's track, BGR frame), in order; frames of a stream in time
        order. Each track is updated to the face found in its frame."""
        images = [image for _, image in frames]
        tracks = [track for track, _ in frames]
        need = [i for i, t in enumerate(tracks)
                if t.region is None or t.since_detect >= self.detect_every]
        regions: list[Region | None] = [t.region for t in tracks]
        detected = set()
        for i, region in zip(need, self.detect([images[i] for i in need])):
            # A detection of the face already tracked only confirms it: re-seeding the
            # landmarks from the detector's coarser box every detect_every frames moved them
            # by up to 2 px at that cadence, a ~1.4 Hz saw-tooth (at 15 frames/s) inside the
            # heart-rate band, in every landmark signal (skin regions, eye aspect ratio).
            keep = tracks[i].region is not None and region is not None and _same_face(
                tracks[i].region, region)
            regions[i] = tracks[i].region if keep else region
            tracks[i].since_detect = 0
            detected.add(i)
        faces = [Face(present=False) for _ in frames]
        todo = [i for i, r in enumerate(regions) if r is not None]
        for i, (points, presence) in zip(todo, self.landmarks(
                [images[i] for i in todo], [regions[i] for i in todo])):
            if presence < self.min_presence:
                continue
            x0, y0 = points[:, :2].min(axis=0)
            x1, y1 = points[:, :2].max(axis=0)
            faces[i] = Face(True, presence, points, (x0, y0, x1, y1))
        # Tracking: the next frame of each stream starts from this frame's landmarks.
        for i, (face, track) in enumerate(zip(faces, tracks)):
            track.region = _region_from_landmarks(face.landmarks) if face.present else None
            track.since_detect += 0 if i in detected else 1
        present = [(f, images[i]) for i, f in enumerate(faces) if f.present]
        if present:
            probs = self.expressions([img for _, img in present], [f.box for f, _ in present])
            for (face, _), p in zip(present, probs):
                face.expression = p
        return faces

    def detect(self, images: list[np.ndarray]) -> list[Region | None]:
        """BlazeFace on BGR frames, one batch: the largest face's region per frame, or None."""
        out: list[Region | None] = []
        for found in blazeface.detect_many(self.detector, images, self.min_detection, bgr=True):
            best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]),
                       default=None)
            out.append(None if best is None else _region_from_detection(best))
        return out

    def landmarks(self, images: list[np.ndarray],
                   regions: list[Region]) -> list[tuple[np.ndarray, float]]:
        """468 points (frame pixels) and face-presence probability per region of BGR frames."""
        if not images:
            return []
        crops, inverses = [], []
        for img, region in zip(images, regions):
            m = region.to_crop(LANDMARK_SIZE)
            crop = cv2.warpAffine(img, m, (LANDMARK_SIZE, LANDMARK_SIZE),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            inverses.append(cv2.invertAffineTransform(m))
        x = (np.stack(crops).astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
        points, presence = self.landmarker.run(None, {"input": x})
        points = points.reshape(len(images), 468, 3)
        out = []
        for pts, logit, inv, region in zip(points, presence.reshape(-1), inverses, regions):
            xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
            z = pts[:, 2:] * region.size / LANDMARK_SIZE
            out.append((np.hstack([xy, z]).astype(np.float32), _sigmoid(float(logit))))
        return out

    def expressions(self, images: list[np.ndarray],
                    boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
        """Expression probabilities (N, 7) for the faces in `boxes` of BGR frames, one batch."""
        crops = [_expression_crop(img, b) for img, b in zip(images, boxes)]
        x = np.stack(crops).astype(np.float32)[..., None] / 127.5 - 1.0
        return self.expression.run(None, {"input": x})[0]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, x))))


def _region_from_detection(det: blazeface.Detection) -> Region:
    """MediaPipe's detection-to-ROI: the box's centre, 1.5 × its size, rolled like the eyes."""
    x0, y0, x1, y1 = (float(v) for v in det.box)
    (rx, ry), (lx, ly) = det.keypoints[0], det.keypoints[1]
    angle = math.atan2(float(ly - ry), float(lx - rx))
    return Region((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * ROI_SCALE, angle)


def _same_face(tracked: Region, detected: Region) -> bool:
    """Whether a detection is the tracked face: centres within a quarter of the size, sizes
    within 30 %. A face that moved further, or another face, re-seeds the track."""
    offset = math.hypot(detected.cx - tracked.cx, detected.cy - tracked.cy)
    return offset < 0.25 * tracked.size and 0.7 < detected.size / tracked.size < 1.3


def _region_from_landmarks(points: np.ndarray) -> Region:
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    (rx, ry), (lx, ly) = points[EYE_OUTER[0], :2], points[EYE_OUTER[1], :2]
    angle = math.atan2(ly - ry, lx - rx)
    return Region(float(x0 + x1) / 2, float(y0 + y1) / 2,
                  float(max(x1 - x0, y1 - y0)) * ROI_SCALE, angle)


def _expression_crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """A square grey crop around the face with fer's margin, resized to 64×64 (grey after
    cropping: the same pixels as fer's grey-then-crop, at a fraction of the cost)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * EXPRESSION_MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    m = Region(cx, cy, side, 0.0).to_crop(EXPRESSION_SIZE)
    crop = cv2.warpAffine(image, m, (EXPRESSION_SIZE, EXPRESSION_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
