"""Anchors, box decoding and NMS for MediaPipe's short-range BlazeFace (face_detection_short_range).

The ONNX model only gives raw per-anchor offsets and logits; these are the post-processing
steps of MediaPipe's face_detection_short_range graph (SsdAnchorsCalculator,
TensorsToDetectionsCalculator, NonMaxSuppressionCalculator) in numpy, so the face
pipeline can use the model without MediaPipe.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple, Protocol

import numpy as np

INPUT_SIZE = 128
NUM_ANCHORS = 896
NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth centre, right ear tragion, left ear
STRIDES = (8, 16, 16, 16)
SCORE_CLIP = 100.0
MIN_SCORE = 0.5
MIN_SUPPRESSION_IOU = 0.3


class Session(Protocol):
    """What detect() needs of an onnxruntime.InferenceSession."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...


class Detection(NamedTuple):
    """One face: score in [0, 1], box (x0, y0, x1, y1) and keypoints (6, 2), in [0, 1] units
    of the model input (the letterboxed frame: use Letterbox.to_frame to map back)."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray


class Letterbox(NamedTuple):
    """How a frame was fitted into the square model input: scale then offset, in pixels."""

    scale: float
    pad_x: float
    pad_y: float
    frame_w: int
    frame_h: int

    def to_frame(self, det: Detection) -> Detection:
        """Map a detection from model-input units to frame pixels."""
        xs = (det.box[[0, 2]] * INPUT_SIZE - self.pad_x) / self.scale
        ys = (det.box[[1, 3]] * INPUT_SIZE - self.pad_y) / self.scale
        kps = (det.keypoints * INPUT_SIZE - [self.pad_x, self.pad_y]) / self.scale
        return Detection(det.score, np.array([xs[0], ys[0], xs[1], ys[1]]), kps)


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    centres = []
    i = 0
    while i < len(STRIDES):
        # Consecutive layers with the same stride share one feature map: 2 anchors each
        # (aspect ratio 1 plus the interpolated scale), fixed anchor size 1.
        j = i
        while j < len(STRIDES) and STRIDES[j] == STRIDES[i]:
            j += 1
        per_cell = 2 * (j - i)
        cells = -(-INPUT_SIZE // STRIDES[i])
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
        i = j
    out = np.array(centres, dtype=np.float32)
    out.setflags(write=False)
    return out


def anchors() -> np.ndarray:
    """The 896 anchor centres (x, y) in [0, 1] (16x16 cells x 2, then 8x8 cells x 6)."""
    return _anchors()


def decode(regressors: np.ndarray, logits: np.ndarray,
           min_score: float = MIN_SCORE) -> list[Detection]:
    """Raw outputs of one image ([896, 16] and [896] or [896, 1], batch axis optional)
    to the detections scoring at least ``min_score``, best first, before NMS."""
    reg = np.asarray(regressors, dtype=np.float32).reshape(NUM_ANCHORS, 16)
    raw = np.asarray(logits, dtype=np.float64).reshape(NUM_ANCHORS)
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw, -SCORE_CLIP, SCORE_CLIP)))
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    anc = anchors()
    out = []
    for k in keep:
        r = reg[k] / INPUT_SIZE
        cx, cy = r[0] + anc[k, 0], r[1] + anc[k, 1]
        w, h = r[2], r[3]
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)
        kps = r[4:4 + 2 * NUM_KEYPOINTS].reshape(NUM_KEYPOINTS, 2) + anc[k]
        out.append(Detection(float(scores[k]), box, kps.astype(np.float32)))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of box ``a`` (4,) with each row of ``b`` (M, 4), xyxy."""
    b = np.atleast_2d(b)
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(detections: list[Detection], iou_threshold: float = MIN_SUPPRESSION_IOU,
        weighted: bool = True, max_faces: int | None = None) -> list[Detection]:
    """Suppress overlapping detections, best first.

    ``weighted`` is MediaPipe's choice for faces: each kept box (and its keypoints) is the
    score-weighted mean of the boxes it suppresses, which steadies the box between frames.
    """
    dets = sorted(detections, key=lambda d: -d.score)
    out: list[Detection] = []
    while dets and (max_faces is None or len(out) < max_faces):
        boxes = np.stack([d.box for d in dets])
        overlap = iou(dets[0].box, boxes) > iou_threshold
        overlap[0] = True
        group = [d for d, o in zip(dets, overlap) if o]
        if weighted:
            w = np.array([d.score for d in group], dtype=np.float64)
            w /= w.sum()
            box = np.tensordot(w, np.stack([d.box for d in group]), axes=1)
            kps = np.tensordot(w, np.stack([d.keypoints for d in group]), axes=1)
            out.append(Detection(dets[0].score, box.astype(np.float32),
                                 kps.astype(np.float32)))
        else:
            out.append(dets[0])
        dets = [d for d, o in zip(dets, overlap) if not o]
    return out


def letterbox(rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
    """An RGB uint8 frame (H, W, 3) to the model input [1, 3, 128, 128] in [-1, 1].

    Like MediaPipe: keep the aspect ratio, centre it, pad with zeros (black before scaling,
    so -1 after), bilinear resize.
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = INPUT_SIZE / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized
    tensor = canvas.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
    return tensor, Letterbox(scale, float(pad_x), float(pad_y), w, h)


def detect_many(session: Session, images: list[np.ndarray], min_score: float = MIN_SCORE,
                max_faces: int | None = None, bgr: bool = False) -> list[list[Detection]]:
    """Faces in each frame, in frame pixels: letterbox, one batched run, decode, weighted NMS.
    ``bgr`` frames (OpenCV's order) are turned to RGB on the small model input, not the frame."""
    if not images:
        return []
    tensors, boxes = zip(*(letterbox(img) for img in images))
    batch = np.concatenate(tensors)
    if bgr:
        batch = np.ascontiguousarray(batch[:, ::-1])
    regressors, logits = session.run(["regressors", "classificators"], {"input": batch})
    return [[box.to_frame(d) for d in nms(decode(reg, logit, min_score), max_faces=max_faces)]
            for reg, logit, box in zip(regressors, logits, boxes)]


def detect(session: Session, rgb: np.ndarray, min_score: float = MIN_SCORE,
           max_faces: int | None = None) -> list[Detection]:
    """Faces in one RGB frame, in frame pixels."""
    return detect_many(session, [rgb], min_score, max_faces)[0]
