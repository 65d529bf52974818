"""rPPG, blinks, head pose, mouth and brows against known ground truth.

* Heart rate: synthetic mp4 clips from ``streamer.synthetic`` (known rate, sensor noise, head
  motion, lighting drift, H.264), decoded with PyAV, the skin colour taken as the node takes
  it (face landmarks, ``face_skin``); the same path is also tested on rendered frames whose
  facial skin pulses. (The generated face matrix and ``wellmon bench rppg``
  measure the whole path on varied faces.)
* HRV: RGB series synthesised from a known sequence of inter-beat intervals.
* Blinks: EAR traces with blinks at known times, noise, a slow head tilt, a long eye closure,
  a downward glance and a lost face.
* Head pose, mouth, brows: canonical face-model points projected through a pinhole camera.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from wellmon.models.perception import facemesh
from wellmon.models.perception.behaviour import (
    BehaviourTracker,
    BlinkDetector,
    brow_raise,
    camera_matrix,
    euler_from_matrix,
    eye_aspect_ratios,
    head_pose,
    matrix_from_euler,
    mouth_opening,
)
from wellmon.models.perception.rppg import (
    REGIONS,
    STABLE_RELAX_DB,
    PulseEstimator,
    SkinSample,
    SkinSampler,
    face_skin,
    hrv_from_beats,
    skin_labels,
)
from wellmon.streamer import sources
from wellmon.streamer.synthetic import ClipSpec, make_clip

FPS = 15.0
CLIP_S = 14.0
RATES = (55.0, 75.0, 95.0, 120.0)


# ----------------------------------------------------------------------------- helpers


def canonical_landmarks(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
                        tvec: tuple[float, float, float] = (0.0, 0.0, 50.0),
                        size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """(468, 3) landmarks: the named canonical points projected, NaN for the rest."""
    idx = sorted(facemesh.CANONICAL_3D)
    pts = np.array([facemesh.CANONICAL_3D[i] for i in idx])
    rvec, _ = cv2.Rodrigues(matrix_from_euler(yaw, pitch, roll))
    proj, _ = cv2.projectPoints(pts, rvec, np.array(tvec, float), camera_matrix(*size), None)
    out = np.full((facemesh.NUM_LANDMARKS, 3), np.nan)
    out[idx, :2] = proj.reshape(-1, 2)
    out[idx, 2] = 0.0
    return out


def _beat(phase: np.ndarray) -> np.ndarray:
    out = np.zeros_like(phase, dtype=np.float64)
    for k in (-1, 0, 1):
        out += np.exp(-0.5 * ((phase - 0.20 + k) / 0.09) ** 2)
        out += 0.45 * np.exp(-0.5 * ((phase - 0.52 + k) / 0.12) ** 2)
    return out


_GRID = _beat(np.linspace(0.0, 1.0, 2001)[:-1])


def pulse_shape(phase: np.ndarray) -> np.ndarray:
    """Blood volume over one beat (systolic peak at phase 0.2, diastolic wave): zero mean,
    peak-to-peak 1, as in streamer.synthetic."""
    return (_beat(phase) - _GRID.mean()) / np.ptp(_GRID)


def series_from_beats(beats: np.ndarray, t: np.ndarray, noise: float, seed: int,
                      rgb_weights: tuple[float, float, float] = (0.4, 1.0, 0.6),
                      amplitude: float = 1.0) -> np.ndarray:
    """Skin RGB at times t whose blood volume peaks exactly at `beats` (one beat per interval,
    stretched to it), with a slow lighting drift and Gaussian noise per channel."""
    rng = np.random.default_rng(seed)
    k = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, beats.size - 2)
    phase = np.mod((t - beats[k]) / (beats[k + 1] - beats[k]) + 0.2, 1.0)
    volume = pulse_shape(phase)
    skin = np.array([200.0, 160.0, 140.0])
    light = 1.0 + 0.03 * np.sin(2 * np.pi * t / 30.0)
    rgb = (skin - amplitude * np.outer(volume, rgb_weights)) * light[:, None]
    return rgb + noise * rng.standard_normal(rgb.shape)


def ibi_beats(seed: int, duration_s: float, mean_ibi: float = 0.85) -> np.ndarray:
    """Beat times with respiratory sinus arrhythmia (0.25 Hz, +-40 ms) and 25 ms random
    beat-to-beat variation: RMSSD ~40-55 ms, as at rest."""
    rng = np.random.default_rng(seed)
    beats = [0.3]
    while beats[-1] < duration_s + 2:
        b = beats[-1]
        beats.append(b + mean_ibi + 0.04 * math.sin(2 * math.pi * 0.25 * b)
                     + 0.025 * rng.standard_normal())
    return np.array(beats)


def frame_times(duration_s: float, seed: int, fps: float = FPS) -> np.ndarray:
    """Capture times of a webcam: nominal rate with a few ms of jitter."""
    rng = np.random.default_rng([seed, 9])
    return np.arange(int(duration_s * fps)) / fps + rng.uniform(-0.003, 0.003,
                                                                int(duration_s * fps))


# ----------------------------------------------------------------------------- face mesh


def test_facemesh_sets_are_mirror_images_and_eyes_look_open() -> None:
    c = facemesh.CANONICAL_3D
    pairs = [(facemesh.RIGHT_EYE_EAR, facemesh.LEFT_EYE_EAR),
             (facemesh.RIGHT_EYE_CONTOUR, facemesh.LEFT_EYE_CONTOUR),
             (facemesh.RIGHT_BROW_UPPER, facemesh.LEFT_BROW_UPPER),
             (facemesh.RIGHT_BROW_LOWER, facemesh.LEFT_BROW_LOWER),
             (facemesh.RIGHT_CHEEK_POLYGON, facemesh.LEFT_CHEEK_POLYGON),
             ((facemesh.MOUTH_RIGHT_CORNER,), (facemesh.MOUTH_LEFT_CORNER,))]
    for right, left in pairs:
        for r, lft in zip(right, left, strict=True):
            assert np.allclose(np.array(c[r]) * (-1, 1, 1), c[lft]), (r, lft)
            assert c[r][0] < 0  # the subject's right is the canonical model's -x
    for i in (facemesh.NOSE_TIP, facemesh.CHIN, facemesh.FOREHEAD_TOP, facemesh.NASION,
              facemesh.UPPER_LIP_INNER, facemesh.LOWER_LIP_INNER):
        assert c[i][0] == 0.0
    assert set(facemesh.POSE_POINTS) <= set(c)
    lm = canonical_landmarks()
    right, left = eye_aspect_ratios(lm)
    assert right is not None and left is not None
    assert 0.2 < right < 0.35 and right == pytest.approx(left)
    # p2/p3 on the upper lid, p5/p6 on the lower (image y grows downwards)
    for eye in (facemesh.RIGHT_EYE_EAR, facemesh.LEFT_EYE_EAR):
        assert lm[eye[1], 1] < lm[eye[5], 1] and lm[eye[2], 1] < lm[eye[4], 1]
    assert mouth_opening(lm) == pytest.approx(0.0, abs=0.05)  # canonical lips are closed


def test_skin_regions_avoid_eyes_brows_nostrils_and_lips() -> None:
    """On the sample's face, as the landmark model places the points: no eye, brow, lip or
    nostril point lies on a sampled pixel, nor within a few pixels of one, and the skin is
    split over most of the grid's regions."""
    from wellmon.models.perception.face import FacePipeline, FaceTrack

    image = next(av.open(str(sources.SAMPLE_CLIP)).decode(video=0)).to_ndarray(format="bgr24")
    (face,) = FacePipeline(["CPUExecutionProvider"]).process([(FaceTrack(), image)])
    points = face.landmarks[:, :2]
    found = skin_labels(image, points)
    assert found is not None
    x0, y0, labels = found
    avoid = {i for part in facemesh.NOT_SKIN for i in part}
    for i in avoid:
        x, y = int(round(points[i, 0])) - x0, int(round(points[i, 1])) - y0
        near = labels[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3]
        assert (near == -1).all(), f"landmark {i} is next to sampled skin"
    counts = np.bincount(labels[labels >= 0], minlength=len(REGIONS))
    assert np.count_nonzero(counts >= 30) >= 9, counts
    oval = np.zeros(labels.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(points[list(facemesh.FACE_OVAL)] - (x0, y0)).astype(np.int32)],
                 1)
    assert 0.4 < (labels >= 0).sum() / oval.sum() < 0.9  # most of the face, not all of it


# ----------------------------------------------------------------------------- rPPG: clips


def decode_skin(path: Path) -> tuple[np.ndarray, list[SkinSample | None]]:
    """The skin colour of each frame as the node takes it: landmarks, then face_skin."""
    from wellmon.models.perception.face import FacePipeline, FaceTrack

    faces = FacePipeline(["CPUExecutionProvider"], threads=1)
    sampler = SkinSampler()
    times, skin = [], []
    track = FaceTrack()
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            face = faces.process([(track, image)])[0]
            times.append(float(frame.time))
            skin.append(sampler.sample(image, face.landmarks if face.present else None))
    return np.array(times), skin


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Skin colour series (the node's path: landmarks, face_skin) of 14 s 640x480 15 fps
    clips."""
    out = {}
    for bpm in (*RATES, None):
        path = tmp_path_factory.mktemp("rppg") / f"hr_{bpm}.mp4"
        spec = ClipSpec(duration_s=CLIP_S, fps=FPS, width=640, height=480, heart_rate_bpm=bpm,
                        blink_times_s=(), speech=(), motion_px=4.0, lighting_drift=0.05,
                        noise_std=2.0, seed=int(bpm or 7), preset="ultrafast")
        truth = make_clip(path, spec)
        times, rgb = decode_skin(path)
        assert len(times) == round(CLIP_S * FPS) and all(v is not None for v in rgb)
        out[bpm] = (times, rgb, truth)
    return out


def run_estimator(times: np.ndarray, rgb: list, t_end: float, **kw: Any) -> PulseEstimator:
    est = PulseEstimator(**kw)
    for t, v in zip(times, rgb):
        if t <= t_end:
            est.insert(t, v)
    return est


@pytest.mark.parametrize("bpm", RATES)
def test_heart_rate_of_synthetic_clips(clips: dict, bpm: float) -> None:
    times, rgb, truth = clips[bpm]
    assert truth["heart_rate_bpm"] == bpm
    est = run_estimator(times, rgb, CLIP_S)
    early = est.estimate(9.5)
    assert early.heart_rate_bpm is None and early.reason is not None
    assert early.reason.startswith("not enough data (9.5 s < 10 s)")
    for t_end in (10.0, 12.0, CLIP_S):
        e = est.estimate(t_end)
        assert e.heart_rate_bpm is not None, e.reason
        assert abs(e.heart_rate_bpm - bpm) <= 3.0, (t_end, e)
        assert e.quality is not None and e.reason is None
        assert e.window_s >= 10.0 - 1e-6
    # a constant rate has no beat-to-beat variability: any RMSSD here would be timing noise
    # of a 15 fps pulse of 2 grey levels, so the estimator must withhold it and say why
    e = est.estimate(CLIP_S)
    assert e.hrv_rmssd_ms is None and e.hrv_reason, e


def test_no_pulse_gives_no_heart_rate(clips: dict) -> None:
    """A face without a pulse (head motion, lighting drift, noise): every window's heart rate
    is null, with the reason."""
    times, rgb, truth = clips[None]
    assert truth["beat_times_s"] == []
    est = run_estimator(times, rgb, CLIP_S)
    estimates = [est.estimate(t_end) for t_end in np.arange(10.0, CLIP_S + 0.01, 0.5)]
    null = [e for e in estimates if e.heart_rate_bpm is None]
    assert len(null) == len(estimates), estimates
    for e in null:
        assert e.hrv_rmssd_ms is None and e.quality is not None and e.method is not None
        gate = est.min_snr_db[e.method]
        assert e.quality < gate
        assert e.reason == (f"signal quality {e.quality:.1f} dB below threshold {gate:g} dB "
                            f"({e.method}), and neither the methods nor the window's halves agree")


def _weak_pulse_estimates(amplitude: float, seeds: range, from_s: float = 0.0,
                          **kw: Any) -> list[tuple[Any, float]]:
    """(estimate, POS SNR) of one 20 s window per seed: a 78 bpm pulse in the green channel
    of relative amplitude ``amplitude`` from ``from_s`` on, white noise 0.2 % per channel."""
    from wellmon.models.perception.rppg import spectral_peak

    t = np.arange(0.0, 20.0, 1.0 / FPS)
    pulse = np.sin(2 * np.pi * 1.3 * t) * (t >= from_s)
    out = []
    for seed in seeds:
        noise = np.random.default_rng(seed).normal(0.0, 0.002, (t.size, 3))
        rgb = np.array([180.0, 140.0, 120.0]) * (1 + amplitude * np.outer(pulse, [0, 1, 0])
                                                  + noise)
        est = PulseEstimator(**kw)
        for ti, v in zip(t, rgb):
            est.insert(float(ti), v)
        seg = est._segment(float(t[-1]), est.window_s)
        out.append((est.estimate(float(t[-1])),
                    spectral_peak(est._pulse(seg, "pos"), est.fs_hz)[1]))
    return out


def test_a_weak_pulse_that_lasts_the_window_is_given_below_the_gate() -> None:
    """A pulse too weak for POS's gate still counts when both halves of the window, each on
    its own, peak at its rate; one that fills only half the window does not, even where its
    SNR alone would pass the relaxed gate. POS alone, so that no other rule passes them."""
    seeds = range(12)
    gate = PulseEstimator().min_snr_db["pos"]
    steady = _weak_pulse_estimates(0.0014, seeds, methods=("pos",))
    strict = _weak_pulse_estimates(0.0014, seeds, methods=("pos",), stable_relax_db=0.0)
    given = [e for e, snr in steady if e.heart_rate_bpm is not None]
    assert sum(e.quality < gate for e in given) >= 4, steady
    assert all(abs(e.heart_rate_bpm - 78.0) <= 3.0 for e in given)
    assert not any(e.heart_rate_bpm is not None for e, _ in strict)
    half = _weak_pulse_estimates(0.002, seeds, from_s=10.0, methods=("pos",))
    assert sum(snr >= gate - STABLE_RELAX_DB for _, snr in half) >= 3
    assert all(e.heart_rate_bpm is None for e, _ in half), half


def test_gaps_and_missing_face(clips: dict) -> None:
    times, rgb, _ = clips[75.0]
    est = PulseEstimator()
    assert est.estimate(5.0).reason == "no data"
    for t, v in zip(times, rgb):
        # face lost for 1.5 s at 4 s; the gap-free pieces are 4 s and 8.5 s long
        est.insert(t, None if 4.0 <= t < 5.5 else v)
    e = est.estimate(CLIP_S)
    assert e.heart_rate_bpm is None and e.reason == "not enough data (8.5 s < 10 s)"
    est = PulseEstimator()
    for t, v in zip(times, rgb):
        est.insert(t, None if 4.0 <= t < 4.3 else v)  # 0.3 s: bridged
    e = est.estimate(CLIP_S)
    assert e.heart_rate_bpm is not None and abs(e.heart_rate_bpm - 75.0) <= 3.0
    est = PulseEstimator()
    for t in times:
        est.insert(t, None)
    assert est.estimate(CLIP_S).reason == "no face"


# ----------------------------------------------------------------------------- rPPG: series


def test_landmark_path_face_skin_feeds_the_same_estimator() -> None:
    """Frames painted around real landmarks (the model's, on the sample's face, moving a
    little): the facial skin pulses (72 bpm); the eyes, brows and lips carry a stronger
    in-band flicker of another rate and the background is not skin-coloured: neither may
    count."""
    from wellmon.models.perception.face import FacePipeline, FaceTrack

    image = next(av.open(str(sources.SAMPLE_CLIP)).decode(video=0)).to_ndarray(format="bgr24")
    base = FacePipeline(["CPUExecutionProvider"]).process([(FaceTrack(), image)])[0].landmarks
    size = (image.shape[1], image.shape[0])
    bpm = 72.0
    times = frame_times(12.0, 3)
    rng = np.random.default_rng(3)
    est = PulseEstimator()
    for t in times:
        lm = base.copy()
        lm[:, 0] += 2 * math.sin(0.4 * t)
        lm[:, 1] += 1.5 * math.sin(0.3 * t)
        frame = np.full((size[1], size[0], 3), (140, 90, 60), np.uint8)  # BGR blue: not skin
        v = pulse_shape(np.array([np.mod(t * bpm / 60.0, 1.0)]))[0]
        skin = np.array([140.0, 160.0, 200.0]) - 1.5 * v * np.array([0.6, 1.0, 0.4])  # BGR
        noisy = np.rint(np.clip(skin + rng.normal(0, 4.0, (size[1], size[0], 3)), 0, 255))
        face = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(face, [np.round(lm[list(facemesh.FACE_OVAL), :2]).astype(np.int32)], 255)
        frame[face > 0] = noisy[face > 0].astype(np.uint8)
        flicker = 30.0 * math.sin(2 * math.pi * 1.9 * t)  # 114 bpm, 20x the pulse
        for part in facemesh.NOT_SKIN:
            hull = cv2.convexHull(np.round(lm[list(part), :2]).astype(np.int32))
            cv2.fillPoly(frame, [hull], tuple(float(c) + flicker for c in (140, 160, 200)))
        sample = face_skin(frame, lm)
        assert sample is not None
        ok = ~np.isnan(sample.rgb[:, 0])
        assert np.count_nonzero(ok) >= 9
        assert np.allclose(sample.rgb[ok], skin[::-1], atol=1.5)  # skin only, RGB order
        est.insert(t, sample)
    e = est.estimate(float(times[-1]))
    assert e.heart_rate_bpm is not None and abs(e.heart_rate_bpm - bpm) <= 3.0, e
    far = base + (5000.0, 0.0, 0.0)  # face outside the frame
    assert face_skin(np.zeros((size[1], size[0], 3), np.uint8), far) is None


def test_pos_removes_intensity_distortions_that_swamp_green() -> None:
    """A pulse with the blood-volume signature of real skin under in-band flicker of the light
    (e.g. a monitor's content): POS cancels it, the green channel alone cannot."""
    bpm = 66.0
    times = frame_times(14.0, 5)
    beats = np.arange(0.1, 16.0, 60.0 / bpm)
    pbv = np.array([0.33, 0.77, 0.53]) * np.array([200.0, 160.0, 140.0]) / 160.0  # Wang et al.
    skin = series_from_beats(beats, times, noise=0.02, seed=5, rgb_weights=tuple(pbv),
                             amplitude=1.2)
    rng = np.random.default_rng(5)
    flicker = 1.0 + 0.01 * np.sin(2 * np.pi * 1.6 * times + rng.uniform(0, 6))
    rgb = skin * flicker[:, None]
    both = run_estimator(times, list(rgb), times[-1]).estimate(times[-1])
    green = run_estimator(times, list(rgb), times[-1], methods=("green",)).estimate(times[-1])
    assert both.method == "pos" and both.heart_rate_bpm is not None, both
    assert abs(both.heart_rate_bpm - bpm) <= 3.0
    assert green.heart_rate_bpm is None or abs(green.heart_rate_bpm - bpm) > 10.0, green


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hrv_from_known_intervals(seed: int) -> None:
    duration = 40.0
    beats = ibi_beats(seed, duration)
    times = frame_times(duration, seed)
    rgb = series_from_beats(beats, times, noise=0.03, seed=seed)
    t_end = float(times[-1])
    e = run_estimator(times, list(rgb), t_end).estimate(t_end)
    truth = hrv_from_beats(beats[(beats > t_end - 30.0) & (beats <= t_end)])
    assert truth.rmssd_ms is not None and truth.sdnn_ms is not None
    assert e.hrv_rmssd_ms is not None and e.hrv_sdnn_ms is not None, e.hrv_reason
    true_bpm = 60.0 / float(np.mean(np.diff(beats[beats <= t_end])))
    assert e.heart_rate_bpm is not None and abs(e.heart_rate_bpm - true_bpm) <= 3.0
    assert e.hrv_rmssd_ms == pytest.approx(truth.rmssd_ms, rel=0.15)
    assert e.hrv_sdnn_ms == pytest.approx(truth.sdnn_ms, rel=0.15)
    # the same heart with 10x the noise: heart rate still right, HRV withheld with the reason
    noisy = series_from_beats(beats, times, noise=0.3, seed=seed)
    e = run_estimator(times, list(noisy), t_end).estimate(t_end)
    assert e.hrv_rmssd_ms is None and e.hrv_sdnn_ms is None and e.hrv_reason, e


# ----------------------------------------------------------------------------- blinks


def _closure(t: float, start: float, dur: float) -> float:
    """Eyelid closure 0..1 as in streamer.synthetic: fast close (40 %), slower open."""
    u = (t - start) / dur
    if u <= 0 or u >= 1:
        return 0.0
    if u < 0.4:
        return math.sin(0.5 * math.pi * u / 0.4) ** 2
    return math.cos(0.5 * math.pi * (u - 0.4) / 0.6) ** 2


def _plateau(t: float, a: float, b: float, ramp: float) -> float:
    if t <= a - ramp or t >= b + ramp:
        return 0.0
    if t < a:
        return 0.5 - 0.5 * math.cos(math.pi * (t - a + ramp) / ramp)
    if t > b:
        return 0.5 + 0.5 * math.cos(math.pi * (t - b) / ramp)
    return 1.0


BLINKS = ((2.3, 0.2), (6.1, 0.25), (9.8, 0.3), (14.2, 0.2), (17.95, 0.35), (22.4, 0.2),
          (26.7, 0.25), (35.3, 0.3), (44.6, 0.2), (47.1, 0.25), (54.3, 0.2), (57.6, 0.3))
LONG_CLOSURE = (30.0, 31.5)  # eyes shut: not a blink
GLANCE = (39.5, 41.3)  # looking down: lids half lowered


def ear_trace(seed: int, fps: float = FPS, blinks: tuple = BLINKS, duration: float = 60.0
              ) -> tuple[np.ndarray, list[float | None]]:
    rng = np.random.default_rng(seed)
    times = frame_times(duration, seed, fps)
    out: list[float | None] = []
    for t in times:
        if 50.0 < t < 51.0:  # face lost
            out.append(None)
            continue
        open_ear = 0.29 * (1 - 0.15 * math.sin(2 * math.pi * t / 30.0))  # slow head tilt
        c = max((_closure(t, s, d) for s, d in blinks), default=0.0)
        e = open_ear * (1 - 0.85 * c)
        e *= 1 - 0.85 * _plateau(t, *LONG_CLOSURE, 0.08)
        e *= 1 - 0.5 * _plateau(t, *GLANCE, 0.15)
        out.append(e + float(rng.normal(0, 0.006)))
    return times, out


@pytest.mark.parametrize("fps", [15.0, 30.0])
def test_blinks_found_at_known_times(fps: float) -> None:
    for seed in range(3):
        times, ear = ear_trace(seed, fps)
        det = BlinkDetector()
        returned = [b for t, e in zip(times, ear) if (b := det.insert(t, e)) is not None]
        assert returned == list(det.blinks)
        found = sorted(det.blinks, key=lambda b: b.closed_s)
        assert len(found) == len(BLINKS), [round(b.closed_s, 2) for b in found]
        for b, (start, dur) in zip(found, BLINKS):
            closed = start + 0.4 * dur  # moment of full closure
            assert abs(b.closed_s - closed) <= 0.2 and abs(b.start_s - start) <= 0.2, (b, start)
            assert 0.0 < b.duration_s <= dur and b.depth < 0.5
        # the long closure and the glance are reported as long closures, never as blinks
        assert len(det.long_closures) == 2
        for c, (a, b) in zip(det.long_closures, (LONG_CLOSURE, GLANCE)):
            assert abs(c.start_s - a) <= 0.2 and abs(c.end_s - b) <= 0.2, c
        assert det.rate_per_min(0.0, 60.0) == pytest.approx(
            60.0 * len(BLINKS) / det.observed_s(0.0, 60.0))
        assert det.observed_s(0.0, 60.0) == pytest.approx(59.0, abs=0.3)


def test_no_false_blinks_during_steady_gaze_and_lowered_lids() -> None:
    times, ear = ear_trace(11, blinks=())
    det = BlinkDetector()
    for t, e in zip(times, ear):
        det.insert(t, e)
    assert list(det.blinks) == []
    # reading for 9 s with the lids at 55 %: the baseline follows, blinks stay detectable
    blinks = ((3.0, 0.25), (8.0, 0.25), (12.0, 0.25), (16.5, 0.25))
    rng = np.random.default_rng(1)
    det = BlinkDetector()
    for t in frame_times(20.0, 1):
        c = max(_closure(t, s, d) for s, d in blinks)
        e = 0.29 * (1 - 0.45 * _plateau(t, 5.0, 14.0, 0.2)) * (1 - 0.85 * c)
        det.insert(t, e + float(rng.normal(0, 0.006)))
    closed = [s + 0.4 * d for s, d in blinks]
    assert [round(b.closed_s - c, 1) for b, c in zip(det.blinks, closed)] == [0.0] * 4
    assert len(det.blinks) == 4 and list(det.long_closures) == []


# ----------------------------------------------------------------------------- pose etc.


@pytest.mark.parametrize("angles", [(20.0, -10.0, 5.0), (0.0, 0.0, 0.0), (-35.0, 15.0, -12.0),
                                    (10.0, 28.0, 0.0)])
def test_head_pose_recovered(angles: tuple[float, float, float]) -> None:
    assert np.allclose(euler_from_matrix(matrix_from_euler(*angles)), angles)
    rng = np.random.default_rng(0)
    lm = canonical_landmarks(*angles, tvec=(3.0, -2.0, 55.0))
    lm[:, :2] += rng.normal(0, 0.5, (facemesh.NUM_LANDMARKS, 2))  # landmark jitter, px
    pose = head_pose(lm, (640, 480))
    assert pose is not None
    got = (pose.yaw_deg, pose.pitch_deg, pose.roll_deg)
    assert np.allclose(got, angles, atol=2.0), got
    assert pose.tvec[2] == pytest.approx(55.0, rel=0.05) and pose.reprojection_px < 1.5
    yaw, pitch, _ = angles
    assert pose.looking_away == (abs(yaw) > 25 or abs(pitch) > 20)
    # signs: yaw > 0 turns the nose towards the image's right, pitch > 0 lifts it
    nose, mid = lm[facemesh.NOSE_TIP], (lm[33] + lm[263]) / 2
    if yaw > 5:
        assert nose[0] > mid[0]
    lm[:, :2] = np.nan
    assert head_pose(lm, (640, 480)) is None


def test_mouth_brows_and_window_summary() -> None:
    tracker = BehaviourTracker()
    size = (640, 480)
    for i in range(150):  # 10 s: neutral face, then 4 s with mouth open and brows lowered
        t = i / FPS
        lm = canonical_landmarks(yaw=30.0 if 4.0 <= t < 5.0 else 0.0)
        if t >= 6.0:
            lm[facemesh.LOWER_LIP_INNER, 1] += 20.0  # ~0.1 of the face height
            for i_brow in facemesh.RIGHT_BROW_LOWER + facemesh.LEFT_BROW_LOWER:
                lm[i_brow, 1] += 3.0
        if 2.0 <= t < 2.2:  # a blink: upper lids down onto the lower lids
            for eye in (facemesh.RIGHT_EYE_EAR, facemesh.LEFT_EYE_EAR):
                lm[[eye[1], eye[2]], 1] = lm[[eye[5], eye[4]], 1]
        if 7.0 <= t < 7.5:
            lm = None  # face lost
        fb = tracker.update(t, lm, size)
        assert fb.face == (lm is not None)
        if 2.0 <= t < 2.2:
            assert fb.ear is not None and fb.ear < 0.01
    neutral = tracker.summary(0.0, 4.0, rate_window_s=None)
    assert neutral.mouth_open_mean == pytest.approx(0.0, abs=0.05)
    assert neutral.brow_lowering_mean == pytest.approx(0.0, abs=0.01)
    assert neutral.looking_away_ratio == 0.0 and neutral.face_ratio == 1.0
    assert neutral.yaw_mean_deg == pytest.approx(0.0, abs=1.0)
    assert neutral.blink_count == 1 and neutral.blink_rate_per_min is None  # < 10 s observed
    (blink,) = tracker.blinks.blinks
    assert 2.0 <= blink.closed_s < 2.2 and blink.depth == pytest.approx(0.0, abs=0.05)
    turned = tracker.summary(4.0, 5.0, rate_window_s=None)
    assert turned.looking_away_ratio == 1.0 and turned.yaw_mean_deg == pytest.approx(30, abs=2)
    late = tracker.summary(6.0, 10.0)
    assert late.mouth_open_mean is not None and 0.08 < late.mouth_open_mean < 0.15
    assert late.brow_lowering_mean is not None and late.brow_lowering_mean > 0.05
    assert late.face_ratio == pytest.approx(52 / 60, abs=0.02)
    assert late.yaw_mean_deg == pytest.approx(0.0, abs=1.0) and late.looking_away_ratio == 0.0
    assert late.blink_rate_per_min is None  # 9.5 s of face in the last 60 s: not enough
    lm = canonical_landmarks()
    raised = lm.copy()
    for i_brow in facemesh.RIGHT_BROW_LOWER + facemesh.LEFT_BROW_LOWER:
        raised[i_brow, 1] -= 3.0
    assert (brow_raise(raised) or 0) > (brow_raise(lm) or 0)
