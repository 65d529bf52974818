"""The live node's face thread (models/face_stage.py) on the sample clip: it sees what the
loop itself would, takes one batch at a time, and a failure in it reaches the loop."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from models.face_stage import FaceBatch, FaceStage
from models.perception import Perception
from streamer import sources
from streamer.protocol import VideoFrame
from wellmon.config import AsrConfig, PerceptionConfig

FPS = 15.0


def sample_frames(streams: tuple[str, ...], count: int) -> list[VideoFrame]:
    """The clip's first `count` analysis frames, once per stream, interleaved as they arrive."""
    reader = sources.video_frames(sources.parse_one("sample"), FPS, 640, 480, loop=False,
                                  pacer=sources.Pacer(0, realtime=False))
    frames = []
    for seq, (t_ns, image) in zip(range(count), reader):
        frames += [VideoFrame(stream, seq, t_ns, image, FPS) for stream in streams]
    return frames


def wait_for(stage: FaceStage) -> FaceBatch:
    assert stage.ready.poll(60_000), "the face thread did not finish a batch in 60 s"
    batch = stage.take()
    assert batch is not None
    return batch


@pytest.fixture
def stage():
    context = zmq.Context()
    stage = FaceStage(Perception(PerceptionConfig(), AsrConfig(engine="off")), context)
    yield stage
    stage.close()
    context.term()


def test_the_face_thread_finds_the_faces_the_loop_would_find_itself(stage) -> None:
    frames = sample_frames(("a", "b"), 24)
    inline = Perception(PerceptionConfig(), AsrConfig(engine="off"))
    batches = [frames[i:i + 8] for i in range(0, len(frames), 8)]
    for batch_frames in batches:
        assert not stage.busy
        stage.submit(batch_frames, heard_ns=123)
        assert stage.busy
        with pytest.raises(RuntimeError, match="one batch at a time"):
            stage.submit(batch_frames, heard_ns=456)
        done = wait_for(stage)
        assert done.frames is batch_frames and done.heard_ns == 123
        expected = inline.find_faces(batch_frames)
        assert all(f is not None and f.present for f in done.faces)
        for got, want in zip(done.faces, expected):
            np.testing.assert_allclose(got.landmarks, want.landmarks, atol=1e-3)
            np.testing.assert_allclose(got.expression, want.expression, atol=1e-5)
    assert not stage.busy and stage.take() is None


def test_a_failure_in_the_face_models_is_raised_in_the_loop_and_the_thread_goes_on(
        stage) -> None:
    good = sample_frames(("a",), 1)
    broken = VideoFrame("a", 1, good[0].t_capture_ns + 66_000_000,
                        np.zeros((480, 640), np.uint8), FPS)  # grey: the models need BGR
    with pytest.raises(Exception) as inline:
        Perception(PerceptionConfig(), AsrConfig(engine="off")).find_faces([broken])
    stage.submit([broken], heard_ns=0)
    assert stage.ready.poll(60_000)
    with pytest.raises(type(inline.value)) as in_thread:
        stage.take()
    assert str(in_thread.value) == str(inline.value)
    assert not stage.busy
    stage.submit(good, heard_ns=0)
    assert wait_for(stage).faces[0].present
