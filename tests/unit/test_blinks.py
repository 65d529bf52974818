"""Blinks seen in the eyes' pixels as well as in the eye aspect ratio (issue 15, item 3).

Faces are rendered here, 320x240: skin with a fixed texture, two eyes (sclera, iris, pupil)
placed where the canonical face model's landmarks put the eye corners, an upper lid painted
down over them during blinks, optional glasses (a thick dark rim crossing each eye's box and
a lens glare over the eye), small head motion (landmarks follow, with jitter), a 3 % lighting
drift and sensor noise. The landmarks stay open during blinks (the EAR does not move), as
the landmark model did on the tester's faces.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from wellmon.benchmarks.blinks import match_onsets
from wellmon.models.perception import facemesh
from wellmon.models.perception.behaviour import BehaviourTracker, camera_matrix, matrix_from_euler

SIZE = (320, 240)
BLINKS = ((2.0, 0.2), (4.3, 0.15), (6.1, 0.3), (8.4, 0.25), (10.2, 0.2), (12.9, 0.3))


def landmarks_at_rest() -> np.ndarray:
    """(468, 3) landmarks of a frontal face 30 cm away (eyes ~27 px wide), NaN elsewhere."""
    idx = sorted(facemesh.CANONICAL_3D)
    pts = np.array([facemesh.CANONICAL_3D[i] for i in idx])
    rvec, _ = cv2.Rodrigues(matrix_from_euler(0.0, 0.0, 0.0))
    proj, _ = cv2.projectPoints(pts, rvec, np.array([0.0, 0.0, 30.0]), camera_matrix(*SIZE),
                                None)
    out = np.full((facemesh.NUM_LANDMARKS, 3), np.nan)
    out[idx, :2] = proj.reshape(-1, 2)
    out[idx, 2] = 0.0
    return out


def closure(t: float) -> float:
    """Lid closure 0..1 at t: fast close (40 %), slower open, as streamer.synthetic."""
    for start, dur in BLINKS:
        u = (t - start) / dur
        if 0 < u < 1:
            return (math.sin(0.5 * math.pi * u / 0.4) ** 2 if u < 0.4
                    else math.cos(0.5 * math.pi * (u - 0.4) / 0.6) ** 2)
    return 0.0


class Face:
    """Renders the face at rest pose with a given lid closure, then moves and lights it."""

    def __init__(self, glasses: bool, seed: int = 0) -> None:
        self.lm = landmarks_at_rest()
        rng = np.random.default_rng(seed)
        tex = cv2.GaussianBlur(rng.normal(0, 12, (SIZE[1], SIZE[0])).astype(np.float32),
                               (0, 0), 2.0)
        self.skin = 150.0 + tex
        self.glasses = glasses
        self.eyes = []
        for a, b in ((facemesh.RIGHT_EYE_OUTER, facemesh.RIGHT_EYE_INNER),
                     (facemesh.LEFT_EYE_INNER, facemesh.LEFT_EYE_OUTER)):
            p, q = self.lm[a, :2], self.lm[b, :2]
            self.eyes.append(((p + q) / 2, float(np.linalg.norm(q - p))))
        self.yy, self.xx = np.mgrid[0:SIZE[1], 0:SIZE[0]].astype(np.float32)
        self._rest: dict[float, np.ndarray] = {}

    def rest_image(self, c: float) -> np.ndarray:
        """The face at rest with lid closure c (rounded to 1/50: the frames are made fast)."""
        c = round(c * 50) / 50
        if c not in self._rest:
            self._rest[c] = self._render(c)
        return self._rest[c]

    def _render(self, c: float) -> np.ndarray:
        img = self.skin.copy()
        xx, yy = self.xx, self.yy
        for (cx, cy), d in self.eyes:
            a, b = d / 2, 0.17 * d
            shape = np.sqrt(np.clip(1 - ((xx - cx) / a) ** 2, 0, 1))
            inside = (np.abs(xx - cx) < a) & (np.abs(yy - cy) < b * shape)
            img[inside] = 205.0
            r = np.hypot(xx - cx, yy - cy)
            img[inside & (r < 0.2 * d)] = 70.0
            img[inside & (r < 0.08 * d)] = 20.0
            top, bottom = cy - b * shape, cy + b * shape
            edge = top + c * (bottom - top)
            lid = inside & (yy < edge)
            img[lid] = self.skin[lid] - 8.0
            if c > 0.05:
                img[inside & (np.abs(yy - edge) < 0.8)] = 45.0
            if self.glasses:
                # rim: a thick dark frame whose lower bar crosses the eye's box
                x0, x1 = int(cx - 0.8 * d), int(cx + 0.8 * d)
                y0, y1 = int(cy - 0.55 * d), int(cy + 0.22 * d)
                cv2.rectangle(img, (x0, y0), (x1, y1), 30.0, 3)
                # glare: a bright patch on the lens over the outer part of the eye
                glare = ((xx - (cx - 0.25 * d)) / (0.18 * d)) ** 2 + \
                    ((yy - (cy - 0.05 * d)) / (0.12 * d)) ** 2 < 1
                img[glare] = np.maximum(img[glare], 245.0)
        return img

    def frame(self, t: float, rng: np.random.Generator, c: float | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """BGR frame and its landmarks at t: head shifted by up to 3 px (landmarks follow
        with 0.3 px jitter), gain 1 +- 3 %, noise sigma 2."""
        dx = 3.0 * math.sin(2 * math.pi * 0.21 * t)
        dy = 2.0 * math.sin(2 * math.pi * 0.13 * t + 1.0)
        gain = 1.0 + 0.03 * math.sin(2 * math.pi * t / 6.0)
        img = self.rest_image(closure(t) if c is None else c)
        m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        img = cv2.warpAffine(img, m, SIZE, borderMode=cv2.BORDER_REFLECT101)
        img = img * gain + rng.normal(0, 2.0, img.shape)
        grey = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        lm = self.lm.copy()
        lm[:, 0] += dx + rng.normal(0, 0.3, len(lm))
        lm[:, 1] += dy + rng.normal(0, 0.3, len(lm))
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), lm


def run(face: Face, fps: float, duration: float, seed: int = 1, *, image: bool = True,
        closed: float | None = None) -> BehaviourTracker:
    rng = np.random.default_rng(seed)
    tracker = BehaviourTracker()
    for i in range(int(duration * fps)):
        t = i / fps
        bgr, lm = face.frame(t, rng, closed)
        tracker.update(t, lm, SIZE, bgr if image else None)
    return tracker


@pytest.mark.parametrize("fps", [15.0, 30.0])
@pytest.mark.parametrize("glasses", [False, True], ids=["bare", "glasses"])
def test_blinks_found_in_the_pixels_when_the_ear_does_not_move(fps: float, glasses: bool
                                                               ) -> None:
    face = Face(glasses)
    tracker = run(face, fps, 14.0)
    found = list(tracker.blinks.blinks)
    score = match_onsets([b.onset_s for b in found], [s for s, _ in BLINKS])
    assert score.hits == len(BLINKS) and score.false_pos == 0, [b.onset_s for b in found]
    assert max(abs(e) for e in score.onset_errors_s) <= 0.1
    assert all(b.depth > 0.8 for b in found)  # the EAR did not follow the lid
    for b, (start, dur) in zip(found, BLINKS):
        assert start - 0.05 <= b.closed_s <= start + dur
    summary = tracker.summary(0.0, 14.0, rate_window_s=None)
    assert summary.blink_count == len(summary.blink_times_s) == len(BLINKS)
    assert summary.blink_rate_per_min == pytest.approx(
        60 * len(BLINKS) / (14.0 - 1 / fps), rel=0.01)
    # without the pixels (the EAR alone, the detector before issue 15) none is seen
    assert list(run(face, fps, 14.0, image=False).blinks.blinks) == []


@pytest.mark.parametrize("glasses", [False, True], ids=["bare", "glasses"])
def test_no_blink_invented_by_head_motion_lighting_drift_or_noise(glasses: bool) -> None:
    tracker = run(Face(glasses, seed=3), 15.0, 20.0, seed=4, closed=0.0)
    assert list(tracker.blinks.blinks) == [] and list(tracker.blinks.long_closures) == []
    assert tracker.blinks.rebaselines == 0


def test_eyes_shut_for_seconds_is_a_long_closure_not_a_blink() -> None:
    face = Face(False)
    rng = np.random.default_rng(2)
    tracker = BehaviourTracker()
    for i in range(10 * 15):
        t = i / 15
        bgr, lm = face.frame(t, rng, 1.0 if 4.0 <= t < 5.2 else 0.0)
        tracker.update(t, lm, SIZE, bgr)
    assert list(tracker.blinks.blinks) == []
    (shut,) = tracker.blinks.long_closures
    assert shut.start_s == pytest.approx(4.0, abs=0.1) and shut.end_s == pytest.approx(5.2,
                                                                                       abs=0.1)
