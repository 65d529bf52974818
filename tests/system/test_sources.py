"""Sources: the containers and URLs PyAV opens, paced or fast, with the right rates and sizes."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from wellmon.streamer import sources


def _transcode(src: Path, dst: Path, video_codec: str | None, audio_codec: str | None) -> Path:
    """Re-encode the test clip into another container with PyAV (what a user might have)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = audio = resampler = None
        if video_codec:
            video = out.add_stream(video_codec, rate=inp.streams.video[0].average_rate)
            video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        if audio_codec:
            audio = out.add_stream(audio_codec, rate=48000)
            audio.layout = "mono"
            resampler = av.AudioResampler(format=audio.format.name, layout="mono", rate=48000)
        for packet in inp.demux():
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame) and video:
                    out.mux(video.encode(frame.reformat(format="yuv420p")))
                elif isinstance(frame, av.AudioFrame) and audio:
                    for resampled in resampler.resample(frame):
                        out.mux(audio.encode(resampled))
        for stream in (video, audio):
            if stream is not None:
                out.mux(stream.encode(None))
    return dst


@pytest.fixture(scope="module")
def containers(clip, tmp_path_factory) -> dict[str, Path]:
    path, _ = clip
    d = tmp_path_factory.mktemp("containers")
    return {
        "mkv": _transcode(path, d / "clip.mkv", "libx264", "aac"),
        "webm": _transcode(path, d / "clip.webm", "libvpx-vp9", "libopus"),
        "wav": _transcode(path, d / "clip.wav", None, "pcm_s16le"),
    }


@pytest.mark.parametrize("kind, video, audio", [("mkv", True, True), ("webm", True, True),
                                                ("wav", False, True)])
def test_containers_are_planned_and_decoded(containers, kind, video, audio) -> None:
    plan = sources.plan(str(containers[kind]))
    assert (plan.video is not None, plan.audio is not None) == (video, audio)
    pacer = sources.Pacer(0, realtime=False)
    if video:
        frames = list(sources.video_frames(plan.video, 5.0, 160, 160, False, pacer))
        assert 50 <= len(frames) <= 62  # 12 s subsampled to 5 fps
        assert frames[0][1].shape == (120, 160, 3)  # 320x240 scaled to fit 160x160
    blocks = list(sources.audio_blocks(plan.audio, 100, False, pacer))
    samples = np.concatenate([b for _, b in blocks])
    assert samples.dtype == np.int16 and abs(len(samples) / sources.AUDIO_RATE - 12.0) < 0.15
    starts = [t for t, _ in blocks]
    assert all(abs((b - a) - 100_000_000) < 1000 for a, b in zip(starts, starts[1:-1]))


def test_file_sources_are_paced_at_real_time_unless_fast(clip, monkeypatch) -> None:
    """Paced: 2 s of the file take at least 2 s to come out. Fast: the reader never sleeps
    (checked by making sleep fail, not by a stopwatch: CI machines are slow and noisy)."""
    path, _ = clip
    src = sources.parse_one(str(path))

    def first_two_seconds(realtime: bool) -> None:
        epoch = time.time_ns()
        for t_ns, _ in sources.video_frames(src, 15.0, 320, 240, False,
                                            sources.Pacer(epoch, realtime)):
            if t_ns - epoch >= 2_000_000_000:
                return

    started = time.monotonic()
    first_two_seconds(realtime=True)
    assert time.monotonic() - started >= 1.9

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"fast mode slept {seconds} s")

    monkeypatch.setattr(sources.time, "sleep", no_sleep)
    first_two_seconds(realtime=False)


def test_looping_file_keeps_time_moving_forward(clip) -> None:
    path, truth = clip
    src = sources.parse_one(str(path))
    frames = sources.video_frames(src, 15.0, 64, 64, True, sources.Pacer(0, realtime=False))
    times = [t for _, (t, _image) in zip(range(int(15 * truth["duration_s"] * 1.5)), frames)]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[-1] / 1e9 > truth["duration_s"] * 1.4


def test_an_http_url_is_a_source(clip, tmp_path, wellmon_env) -> None:
    path, _ = clip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
        out = tmp_path / "scores.jsonl"
        result = subprocess.run([sys.executable, "-m", "wellmon", "replay", url, "--out",
                                 str(out), "--no-progress"], env=wellmon_env,
                                capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(scores) >= 20 and scores[-1]["quality"]["video"]["present"]


def test_stream_ids_come_from_the_source() -> None:
    assert sources.stream_id_for("sample") == "sample"
    assert sources.stream_id_for("webcam:2") == "webcam2"
    assert sources.stream_id_for("webcam:0+mic") == "webcam0"
    assert sources.stream_id_for("/data/Worker 7.mp4") == "Worker-7"
    assert sources.stream_id_for("rtsp://cam.local:554/live") == "cam-local-554-live"
