"""Learned rPPG (models/perception/rppg_learned.py, models/tools/rppg_build.py,
perception.rppg_model).

The streaming stage, its crop, gate and errors are tested on a tiny stand-in ONNX graph
with the converted model's interface (its pulse is the crop's mean brightness). The real
FacePhys is tested on generated clips when it has been built on this machine (its weights
may not be shipped: docs/rppg-learned.md); otherwise those tests skip and say how to build it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from wellmon import cli
from wellmon import config as config_mod
from wellmon.config import ConfigError
from wellmon.models.errors import ModelError
from wellmon.models.perception.rppg_learned import (
    LearnedModel,
    LearnedPulse,
    box_of,
    crop_box,
    face_crop,
    learned_heart_rates,
    resolve,
)
from wellmon.models.tools.rppg_build import COMMAND, SPECS, default_path

ENV_MODEL = "WELLMON_TEST_RPPG_ONNX"


# ----------------------------------------------------------------------------- stand-in


def _stand_in(path: Path) -> Path:
    """An ONNX graph with the learned model's interface: bvp = mean of the crop,
    state_out_0 = state_in_0 + 1 (counts steps; reset zeroes it first)."""
    import onnx
    from onnx import TensorProto, helper

    n = "N"
    nodes = [
        helper.make_node("ReduceMean", ["frame", "axes"], ["bvp"], keepdims=0),
        helper.make_node("Unsqueeze", ["reset", "one_axis"], ["reset2"]),
        helper.make_node("Sub", ["one", "reset2"], ["keep"]),
        helper.make_node("Mul", ["state_in_0", "keep"], ["kept"]),
        helper.make_node("Add", ["kept", "one"], ["state_out_0"]),
        helper.make_node("Identity", ["dt"], ["dt_unused"]),
    ]
    inits = [helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
             helper.make_tensor("one_axis", TensorProto.INT64, [1], [1]),
             helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])]
    graph = helper.make_graph(
        nodes, "stand_in",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, [n, 36, 36, 3]),
         helper.make_tensor_value_info("dt", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("reset", TensorProto.FLOAT, [n]),
         helper.make_tensor_value_info("state_in_0", TensorProto.FLOAT, [n, 1])],
        [helper.make_tensor_value_info("bvp", TensorProto.FLOAT, [n]),
         helper.make_tensor_value_info("state_out_0", TensorProto.FLOAT, [n, 1])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    for key, value in {"wellmon.kind": "rppg-step", "input_size": "36", "fps": "30.0"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> LearnedModel:
    return LearnedModel(_stand_in(tmp_path_factory.mktemp("rppg") / "stand_in.onnx"))


BOX = (60.0, 30.0, 100.0, 80.0)


def _frames(seconds: float, fps: float, bpm: float | None, amp: float = 1.0, seed: int = 0):
    """BGR frames whose face box brightens with a pulse; (t, frame) pairs."""
    rng = np.random.default_rng(seed)
    for i in range(int(seconds * fps)):
        t = i / fps
        img = np.full((120, 160, 3), 120.0)
        pulse = amp * math.sin(2 * math.pi * (bpm or 0) / 60 * t) if bpm else 0.0
        img[30:80, 60:100] += pulse
        img += rng.normal(0, 2.0, img.shape)
        yield t, np.clip(img, 0, 255).astype(np.uint8)


def test_crop_geometry_is_open_rppgs() -> None:
    # open-rppg: x in cx +- 0.45 w, y from cy - 0.6 h to cy + 0.5 h
    assert crop_box((0, 0, 100, 100)) == pytest.approx((5, -10, 95, 100))
    points = np.array([[10, 20, 0], [50, 90, 1], [30, 40, 2]], float)
    assert box_of(points) == (10, 20, 50, 90)
    assert box_of(BOX) == BOX and box_of(None) is None
    img = np.zeros((120, 160, 3), np.uint8)
    img[..., 2] = 200  # red in BGR
    crop = face_crop(img, crop_box(BOX), 36)
    assert crop.shape == (36, 36, 3) and crop.dtype == np.float32
    assert crop[..., 0].min() == 200 and crop[..., 2].max() == 0  # RGB order
    assert face_crop(img, (500, 500, 600, 600), 36) is None


def test_stream_resamples_to_30_per_second_and_gates(stand_in: LearnedModel) -> None:
    pulse = LearnedPulse(stand_in)
    for t, img in _frames(20, 15, 72):
        pulse.insert(t, img, BOX)
    # open-rppg's resampling: each 15 frames/s frame fills two 30 Hz slots
    assert pulse._state[0][0, 0] == pytest.approx(20 * 30, abs=2)
    est = pulse.estimate(20.0)
    assert est.heart_rate_bpm == pytest.approx(72, abs=1.5)
    assert est.quality is not None and est.quality > 3 and est.reason is None
    assert est.window_s >= 10

    flat = LearnedPulse(stand_in)
    for t, img in _frames(20, 15, None):
        flat.insert(t, img, BOX)
    est = flat.estimate(20.0)
    assert est.heart_rate_bpm is None and "below threshold" in est.reason


def test_no_face_gap_resets_and_withholds(stand_in: LearnedModel) -> None:
    pulse = LearnedPulse(stand_in)
    assert pulse.estimate(1.0).reason == "no data"
    frames = list(_frames(24, 15, 72))
    for t, img in frames[:150]:  # 10 s with a face
        pulse.insert(t, img, BOX)
    for t, img in frames[150:180]:  # 2 s without: the last box is held for 1 s only
        pulse.insert(t, img, None)
    for t, img in frames[180:300]:  # 8 s with a face again
        pulse.insert(t, img, BOX)
    # the model restarted from its initial state when the face came back
    assert pulse._state[0][0, 0] == pytest.approx(8 * 30, abs=3)
    est = pulse.estimate(frames[299][0])
    assert est.heart_rate_bpm is None and est.reason.startswith("not enough data")
    gone = LearnedPulse(stand_in)
    for t, img in frames[:40]:
        gone.insert(t, img, None)
    assert gone.estimate(2.5).reason == "no face"


def test_learned_heart_rates_for_benchmarks(stand_in: LearnedModel) -> None:
    frames = list(_frames(16, 15, 96))
    out = learned_heart_rates(frames, [BOX] * len(frames), stand_in, hop_s=2.0)
    assert [round(e.t_end_s) for e in out] == [10, 12, 14]
    assert all(e.heart_rate_bpm == pytest.approx(96, abs=2) for e in out[1:])


def test_missing_or_foreign_model_names_path_and_command(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelError) as err:
        LearnedModel(missing)
    assert str(missing) in str(err.value) and COMMAND in str(err.value)
    assert "perception.rppg_model" in str(err.value)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        LearnedModel(junk)


def test_config_key_and_names(tmp_path: Path) -> None:
    assert config_mod.Config().perception.rppg_model is None
    assert set(config_mod.RPPG_MODELS) == set(SPECS)
    for good in ("facephys", "/models/x.onnx", "~/m.onnx"):
        assert config_mod.Config().replace({"perception.rppg_model": good})
    for bad in ("facephis", "on", "/models/x.h5"):
        with pytest.raises(ConfigError, match=r"perception\.rppg_model"):
            config_mod.Config().replace({"perception.rppg_model": bad})
    env = {"XDG_DATA_HOME": str(tmp_path)}
    assert default_path("facephys", env) == tmp_path / "wellmon/models/rppg-facephys.onnx"
    assert resolve("/a/b.onnx") == Path("/a/b.onnx")


def test_perception_with_missing_model_fails_with_the_command(tmp_path: Path) -> None:
    from wellmon.models.perception.pipeline import Perception

    cfg = config_mod.Config().replace({"perception.rppg_model": str(tmp_path / "m.onnx"),
                                       "perception.face": False, "asr.engine": "off"})
    with pytest.raises(ModelError, match="wellmon models build --rppg facephys"):
        Perception(cfg.perception, cfg.asr)


def test_perception_reports_the_learned_fields(stand_in: LearnedModel) -> None:
    from wellmon.models.perception.pipeline import Perception
    from wellmon.streamer.wire.protocol import VideoFrame

    cfg = config_mod.Config().replace({"perception.rppg_model": str(stand_in.path),
                                       "asr.engine": "off"})
    perception = Perception(cfg.perception, cfg.asr)
    assert perception.learned_model is not None
    frames = [VideoFrame(stream="s", seq=i, t_capture_ns=int(t * 1e9), image=img,
                         fps=15.0)
              for i, (t, img) in enumerate(_frames(3, 15, 72))]
    stream = perception.open_stream("s")
    perception.measure_frames([(stream, f) for f in frames])
    out = stream.summarize([], [], 0, int(3e9))
    assert "heart_rate_learned" in out.signals and out.signals["heart_rate_learned"] is None
    assert out.reasons["heart_rate_learned"]  # no face in these frames: a reason


def test_cli_build_rejects_an_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["models", "build", "--rppg", "nope"])
    assert exc.value.code == 2
    assert "facephys" in capsys.readouterr().err


# ----------------------------------------------------------------------------- FacePhys


def _built_model() -> Path:
    path = Path(os.environ.get(ENV_MODEL) or default_path("facephys"))
    if not path.is_file():
        pytest.skip(f"no learned rPPG model at {path}: build it with `{COMMAND}` (about 5 min "
                    f"on 2 cores, a ~1.1 GB throwaway environment; or set {ENV_MODEL})")
    return path


@pytest.fixture(scope="module")
def facephys() -> LearnedModel:
    return LearnedModel(_built_model())


def _clip_rates(tmp: Path, model: LearnedModel, bpm: float | None, amp: float):
    import av

    from wellmon.models.perception.face import FacePipeline, FaceTrack
    from wellmon.streamer.synthetic import ClipSpec, make_clip

    path = tmp / f"clip_{bpm}_{amp}.mp4"
    make_clip(path, ClipSpec(duration_s=20, width=320, height=240, heart_rate_bpm=bpm,
                             pulse_amplitude=amp, noise_std=2.0, crf=20, speech=(),
                             blink_times_s=(4.0, 12.0)))
    faces = FacePipeline(["CPUExecutionProvider"], threads=1)
    frames, boxes = [], []
    track = FaceTrack()
    with av.open(str(path)) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i % 2:  # wellmon analyses 15 frames/s (capture.video_fps)
                continue
            img = f.to_ndarray(format="bgr24")
            face = faces.process([(track, img)])[0]
            frames.append((float(f.time), img))
            boxes.append(face.box if face.present else None)
    return learned_heart_rates(frames, boxes, model, hop_s=2.0)


def test_facephys_heart_rate_on_a_generated_clip(facephys: LearnedModel, tmp_path: Path) -> None:
    out = _clip_rates(tmp_path, facephys, 84.0, 2.0)
    given = [e.heart_rate_bpm for e in out if e.heart_rate_bpm is not None]
    assert len(given) >= len(out) // 2, out
    assert float(np.median(np.abs(np.array(given) - 84.0))) < 3.0, out


def test_facephys_metadata_says_where_the_weights_come_from(facephys: LearnedModel) -> None:
    meta = facephys.meta
    assert meta["source_package"] == "open-rppg" and meta["source_model"] == "FacePhys.rlap"
    assert "never shipped" in meta["license"]
    assert float(meta["parity_max_abs_diff"]) < 1e-3
