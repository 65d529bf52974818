"""The bundled synthetic sample clip and its generator: the ground truth must be recoverable.

Everything here decodes real mp4 files with PyAV and measures the pulse, blinks and speech
with deliberately simple estimators. If these fail, the clip does not carry what its JSON
claims, and every later validation against it (rPPG, blinks, pitch, speech-to-text) is moot.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from wellmon.streamer import synthetic
from wellmon.streamer.synthetic import ClipSpec, make_clip

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "streamer" / "sample"
SAMPLE_MP4 = SAMPLE_DIR / "sample.mp4"
SAMPLE_JSON = SAMPLE_DIR / "sample.json"
SAMPLE_MD = SAMPLE_DIR / "SAMPLE.md"
HR_BAND_HZ = (0.7, 3.5)


# ----------------------------------------------------------------------------- helpers


def decode_video(
    path: Path, boxes: dict[str, list[int]]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-frame mean RGB inside each [x, y, w, h] box, plus the first frame (RGB)."""
    sums: dict[str, list[np.ndarray]] = {k: [] for k in boxes}
    first = None
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            if first is None:
                first = rgb
            for k, (x, y, w, h) in boxes.items():
                sums[k].append(rgb[y:y + h, x:x + w].reshape(-1, 3).mean(axis=0))
    assert first is not None, "no video frames decoded"
    return {k: np.array(v) for k, v in sums.items()}, first


def decode_audio(path: Path) -> tuple[np.ndarray, int]:
    """The whole audio track as mono float in [-1, 1] and its sample rate."""
    chunks, rate = [], 0
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            rate = frame.sample_rate
            a = frame.to_ndarray().astype(np.float64)
            chunks.append(a.mean(axis=0) if a.ndim == 2 and frame.format.is_planar
                          else a.reshape(-1, frame.layout.nb_channels).mean(axis=1))
    return np.concatenate(chunks), rate


def amplitude_spectrum(x: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed, zero-padded amplitude spectrum (a sinusoid of amplitude A peaks at ~A)."""
    t = np.arange(len(x))
    x = x - np.polyval(np.polyfit(t, x, 2), t)  # lighting drift and slow motion
    w = np.hanning(len(x))
    n = 1 << 16
    amp = np.abs(np.fft.rfft(x * w, n)) * 2 / w.sum()
    freq = np.fft.rfftfreq(n, 1 / fps)
    band = (freq >= HR_BAND_HZ[0]) & (freq <= HR_BAND_HZ[1])
    return freq[band], amp[band]


def pulse_peak(green: np.ndarray, fps: float) -> tuple[float, float, float]:
    """(peak bpm, peak amplitude, peak / median amplitude in the heart-rate band)."""
    freq, amp = amplitude_spectrum(green, fps)
    k = int(np.argmax(amp))
    return float(freq[k] * 60), float(amp[k]), float(amp[k] / np.median(amp))


def find_blinks(eye_rgb: list[np.ndarray], fps: float) -> tuple[list[float], float]:
    """Times of blink events in the eye boxes' mean intensity, and the detection threshold.

    A blink replaces dark iris/pupil by lid skin, so the mean intensity jumps by ~20 levels
    for a few frames; a 1 s running median removes motion and lighting drift.
    """
    s = np.mean([e.mean(axis=1) for e in eye_rgb], axis=0)
    win = int(round(fps)) | 1
    base = np.median(sliding_window_view(np.pad(s, win // 2, mode="edge"), win), axis=1)
    dev = np.abs(s - base)
    noise = 1.4826 * np.median(np.abs(dev - np.median(dev)))
    thr = max(8.0 * noise, 4.0)
    above = dev > thr
    events, i = [], 0
    while i < len(dev):
        if above[i]:
            j = i
            while j < len(dev) and above[j]:
                j += 1
            events.append((i + int(np.argmax(dev[i:j]))) / fps)
            i = j
        else:
            i += 1
    return events, thr


def match_blinks(events: list[float], truth: dict) -> None:
    """Every blink found within 200 ms of its moment of full closure, and nothing else."""
    closed = truth["blink_closed_s"]
    assert len(events) == len(closed), f"detected {events}, expected near {closed}"
    for e, c in zip(sorted(events), closed):
        assert abs(e - c) <= 0.2, f"blink detected at {e:.3f} s, truth {c:.3f} s"


def window_rms(audio: np.ndarray, rate: int, win_s: float) -> tuple[np.ndarray, np.ndarray]:
    """RMS of consecutive windows and the windows' centre times."""
    n = int(rate * win_s)
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    return np.sqrt((frames ** 2).mean(axis=1)), (np.arange(len(frames)) + 0.5) * win_s


def check_speech(audio: np.ndarray, rate: int, truth: dict) -> dict[str, float]:
    """Loud inside every speech interval, silent outside, and the edges are where JSON says."""
    rms, t = window_rms(audio, rate, 0.02)
    fine, tf = window_rms(audio, rate, 0.005)
    near = np.zeros(len(rms), bool)
    worst_edge = 0.0
    for start, end, text in truth["speech_intervals_s"]:
        seg = (t >= start) & (t <= end)
        near |= (t >= start - 0.05) & (t <= end + 0.05)
        loud = float(np.mean(rms[seg] > 0.01))
        assert loud > 0.5, f"{text!r}: only {loud:.0%} of 20 ms windows above -40 dBFS"
        around = np.flatnonzero((tf > start - 0.3) & (tf < end + 0.3) & (fine > 0.005))
        onset, offset = tf[around[0]] - 0.0025, tf[around[-1]] + 0.0025
        assert abs(onset - start) <= 0.01, f"{text!r}: audible from {onset:.3f}, truth {start}"
        assert abs(offset - end) <= 0.02, f"{text!r}: audible until {offset:.3f}, truth {end}"
        worst_edge = max(worst_edge, abs(onset - start), abs(offset - end))
    quiet = float(rms[~near].max())
    assert quiet < 0.003, f"max RMS outside speech {quiet:.4f} (> -50 dBFS)"
    inside = float(np.median(rms[near]))
    assert inside > 10 * quiet
    return {"inside_median": inside, "outside_max": quiet, "worst_edge_s": worst_edge}


def iou(a: list[int], b: list[int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def boxes_of(truth: dict) -> dict[str, list[int]]:
    return {"skin": truth["skin_roi"], "eye0": truth["eye_boxes"][0],
            "eye1": truth["eye_boxes"][1]}


# ----------------------------------------------------------------------------- bundled sample


@pytest.fixture(scope="module")
def sample() -> dict:
    truth = json.loads(SAMPLE_JSON.read_text())
    means, first = decode_video(SAMPLE_MP4, boxes_of(truth))
    audio, rate = decode_audio(SAMPLE_MP4)
    return {"truth": truth, "means": means, "first": first, "audio": audio, "rate": rate}


def test_sample_decodes_and_matches_json(sample: dict) -> None:
    truth = sample["truth"]
    assert SAMPLE_MP4.stat().st_size <= 5_000_000
    with av.open(str(SAMPLE_MP4)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert (v.codec_context.width, v.codec_context.height) == (
            truth["video"]["width"], truth["video"]["height"])
        assert float(v.average_rate) == pytest.approx(truth["video"]["fps"], abs=1e-3)
        assert a.codec_context.sample_rate == truth["audio"]["sample_rate"]
        duration = c.duration / av.time_base
    assert duration <= 60.0
    assert duration == pytest.approx(truth["duration_s"], abs=0.1)
    assert len(sample["means"]["skin"]) == truth["video"]["n_frames"]
    assert len(sample["audio"]) == pytest.approx(truth["audio"]["n_samples"], abs=2048)
    assert truth["spec"]["duration_s"] == truth["duration_s"]


def test_sample_is_current() -> None:
    """sample.json was made by this generator version from today's default ClipSpec."""
    truth = json.loads(SAMPLE_JSON.read_text())
    assert truth["generator_version"] == synthetic.GENERATOR_VERSION
    expected = json.loads(json.dumps(dataclasses.asdict(ClipSpec())))
    assert truth["spec"] == expected, (
        "defaults changed: run python -m wellmon.streamer.synthetic --sample")


def test_sample_sha256() -> None:
    digest = hashlib.sha256(SAMPLE_MP4.read_bytes()).hexdigest()
    documented = re.findall(r"sha256 of `sample.mp4`: `([0-9a-f]{64})`", SAMPLE_MD.read_text())
    assert documented == [digest]
    assert json.loads(SAMPLE_JSON.read_text())["file_sha256"] == digest


def test_sample_face_is_where_json_says(sample: dict) -> None:
    """An off-the-shelf face detector agrees with the ground-truth face box."""
    grey = cv2.cvtColor(sample["first"], cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(grey, 1.1, 5, minSize=(60, 60))
    assert len(faces) >= 1
    assert max(iou(list(map(int, f)), sample["truth"]["face_box"]) for f in faces) > 0.6


def test_sample_pulse_recoverable(sample: dict) -> None:
    truth = sample["truth"]
    bpm, amp, ratio = pulse_peak(sample["means"]["skin"][:, 1], truth["video"]["fps"])
    assert abs(bpm - truth["heart_rate_bpm"]) <= 1.5, bpm
    assert ratio > 10, ratio  # the peak stands out of the band
    assert amp < 3.0  # and stays subtle (a few grey levels at most)
    beats = np.diff(truth["beat_times_s"])
    assert np.allclose(beats, 60 / truth["heart_rate_bpm"], atol=1e-5)


def test_sample_blinks_visible(sample: dict) -> None:
    means = sample["means"]
    events, _ = find_blinks([means["eye0"], means["eye1"]], sample["truth"]["video"]["fps"])
    match_blinks(events, sample["truth"])
    assert len(events) == 8


def test_sample_speech_where_json_says(sample: dict) -> None:
    assert sample["rate"] == 48000
    check_speech(sample["audio"], sample["rate"], sample["truth"])
    assert len(sample["truth"]["speech_intervals_s"]) == 5


# ----------------------------------------------------------------------------- fresh clips


# 10 s rather than 6 s: at 320x240 the codec's own flicker (~0.05 grey levels in the band)
# is too close to the pulse for a 6 s spectrum to tell "no pulse" apart reliably.
SHORT = ClipSpec(duration_s=10.0, width=320, height=240, heart_rate_bpm=90.0,
                 blink_times_s=(3.3,), speech=((1.0, "hello world"),))


@pytest.fixture(scope="module")
def short_clips(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("clips")
    pulse = make_clip(d / "pulse.mp4", SHORT)
    # The no-pulse clip goes through the command line, to cover it as well.
    assert synthetic.main([str(d / "flat.mp4"), "--duration", "10", "--width", "320",
                           "--height", "240", "--heart-rate", "none", "--blinks", "3.3",
                           "--speech", "1.0:hello world"]) == 0
    flat = json.loads((d / "flat.json").read_text())
    return {"dir": d, "pulse": pulse, "flat": flat}


def test_short_clip_recoverable(short_clips: dict) -> None:
    d, truth = short_clips["dir"], short_clips["pulse"]
    assert truth["video"]["n_frames"] == 300 and truth["video"]["width"] == 320
    means, _ = decode_video(d / "pulse.mp4", boxes_of(truth))
    bpm, _, ratio = pulse_peak(means["skin"][:, 1], 30.0)
    assert abs(bpm - 90.0) <= 1.5, bpm
    assert ratio > 8, ratio
    events, _ = find_blinks([means["eye0"], means["eye1"]], 30.0)
    match_blinks(events, truth)
    audio, rate = decode_audio(d / "pulse.mp4")
    check_speech(audio, rate, truth)


def test_no_pulse_clip_has_no_peak(short_clips: dict) -> None:
    d = short_clips["dir"]
    pulse, flat = short_clips["pulse"], short_clips["flat"]
    assert flat["heart_rate_bpm"] is None and flat["beat_times_s"] == []
    assert flat["skin_roi"] == pulse["skin_roi"]
    p_means, _ = decode_video(d / "pulse.mp4", boxes_of(pulse))
    f_means, _ = decode_video(d / "flat.mp4", boxes_of(flat))
    _, p_amp, p_ratio = pulse_peak(p_means["skin"][:, 1], 30.0)
    _, f_amp, f_ratio = pulse_peak(f_means["skin"][:, 1], 30.0)
    assert f_amp < 0.3 * p_amp, (f_amp, p_amp)
    assert f_ratio < 5 < p_ratio, (f_ratio, p_ratio)
    # Same blinks and speech: only the pulse differs.
    events, _ = find_blinks([f_means["eye0"], f_means["eye1"]], 30.0)
    match_blinks(events, flat)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    spec = dataclasses.replace(SHORT, duration_s=2.0, blink_times_s=(1.0,),
                               speech=((0.2, "yes"),))
    first = make_clip(tmp_path / "a.mp4", spec)
    again = make_clip(tmp_path / "b.mp4", spec)
    assert first.pop("file") == "a.mp4" and again.pop("file") == "b.mp4"
    # The encoders are deterministic too, but only the ground truth is promised.
    first.pop("file_sha256")
    again.pop("file_sha256")
    assert first == again


def test_spec_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_clip(tmp_path / "x.mp4", dataclasses.replace(SHORT, blink_times_s=(9.9,)))
    late = ((9.5, "this sentence starts far too late"),)
    with pytest.raises(ValueError):
        make_clip(tmp_path / "x.mp4", dataclasses.replace(SHORT, speech=late))
    with pytest.raises(ValueError):
        make_clip(tmp_path / "x.mp4", dataclasses.replace(SHORT, width=321))
