"""The assembled fusion network: masks, ONNX parity, the shipped expert defaults, load errors."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the fusion model trains in it")

from wellmon.models.fusion import spec  # noqa: E402
from wellmon.models.fusion.features import (  # noqa: E402
    FusionInput,
    audio_steps,
    empty_context,
    no_stress,
    physio_vector,
    stress_vector,
    text_steps,
    visual_steps,
)
from wellmon.models.fusion.serving import DEFAULT_FILE, FusionModel  # noqa: E402
from wellmon.models.perception.behaviour import FrameBehaviour  # noqa: E402
from wellmon.models.perception.records import FrameRecord, HeardUtterance  # noqa: E402
from wellmon.models.perception.runtime import ModelError  # noqa: E402
from wellmon.models.stress.index import WEIGHTS, Baseline, index_of  # noqa: E402
from wellmon.models.training.export import build_default, expert_network, export_onnx  # noqa: E402
from wellmon.models.training.network import FusionNetwork, example_inputs  # noqa: E402
from wellmon.streamer.wire.protocol import NS  # noqa: E402

MASKED_INPUTS = {"visual": "visual_mask", "audio": "audio_mask", "text": "text_mask",
                 "physio": "physio_mask", "stress_z": "stress_mask", "context": "context_mask"}


def trained_like(seed: int = 0) -> FusionNetwork:
    """A network whose every parameter is moved off its start, as training would."""
    torch.manual_seed(seed)
    net = FusionNetwork().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def run_torch(net: FusionNetwork, inputs: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {n: o.numpy() for n, o in zip(spec.OUTPUT_NAMES, net(*inputs))}


@pytest.mark.parametrize("modality", list(MASKED_INPUTS))
def test_masked_values_have_no_influence_on_any_output(modality: str) -> None:
    """Replacing every masked value of one input by huge noise changes no output at all."""
    net = trained_like()
    inputs = list(example_inputs(6, seed=1))
    i, j = spec.INPUT_NAMES.index(modality), spec.INPUT_NAMES.index(MASKED_INPUTS[modality])
    mask = inputs[j].clone()
    mask[0] = False  # one sample without this modality at all
    inputs[j] = mask
    before = run_torch(net, tuple(inputs))
    gen = torch.Generator().manual_seed(7)
    noise = 1e4 * torch.randn(inputs[i].shape, generator=gen)
    keep = mask.reshape(mask.shape + (1,) * (inputs[i].dim() - mask.dim()))
    inputs[i] = torch.where(keep, inputs[i], noise)
    after = run_torch(net, tuple(inputs))
    for name in spec.OUTPUT_NAMES:
        assert np.isfinite(after[name]).all(), name
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_a_present_modality_does_influence_the_output() -> None:
    """The counterpart of the mask test: the same noise on valid values changes the scores."""
    net = trained_like()
    inputs = list(example_inputs(4, seed=2))
    before = run_torch(net, tuple(inputs))
    inputs[spec.INPUT_NAMES.index("audio")] += 1.0
    after = run_torch(net, tuple(inputs))
    assert not np.allclose(before["emotion"], after["emotion"])


def test_context_carries_the_past_and_only_the_past() -> None:
    """next_context is this window appended to the last K-1; a trained graph reads it."""
    net = trained_like()
    inputs = list(example_inputs(3, seed=3))
    out = run_torch(net, tuple(inputs))
    ctx = inputs[spec.INPUT_NAMES.index("context")].numpy()
    np.testing.assert_array_equal(out["next_context"][:, :-1][out["next_context_mask"][:, :-1]],
                                  ctx[:, 1:][inputs[-1].numpy()[:, 1:]])
    assert out["next_context_mask"][:, -1].all()
    inputs[spec.INPUT_NAMES.index("context_mask")] = torch.zeros_like(inputs[-1])
    no_past = run_torch(net, tuple(inputs))
    assert not np.allclose(out["emotion"], no_past["emotion"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[FusionNetwork, Path]:
    net = trained_like(4)
    path = tmp_path_factory.mktemp("fusion") / "fusion.onnx"
    export_onnx(net, path, "test")
    return net, path


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("steps", [spec.STEPS, 5])
def test_onnx_matches_torch(exported: tuple[FusionNetwork, Path], batch: int,
                            steps: int) -> None:
    """onnxruntime and torch agree within 1e-4 (stress compared on its 0-1 scale)."""
    net, path = exported
    inputs = example_inputs(batch, steps=steps, seed=batch + steps)
    ref = run_torch(net, inputs)
    session = FusionModel(path).session
    got = dict(zip(spec.OUTPUT_NAMES, session.run(
        None, {n: t.numpy() for n, t in zip(spec.INPUT_NAMES, inputs)})))
    for name in spec.OUTPUT_NAMES:
        scale = 100.0 if name == "stress" else 1.0
        assert got[name].shape == ref[name].shape, name
        np.testing.assert_allclose(got[name] / scale, ref[name] / scale, atol=1e-4, rtol=0,
                                   err_msg=name)


# ------------------------------------------------------------------ shipped expert defaults


def _frames(rng: np.random.Generator, start: float, n: int = 60, face_from: int = 0
            ) -> list[tuple[float, FrameRecord, FrameBehaviour]]:
    """Records and the behaviour tracker's measures of n frames over 4 s."""
    frames = []
    for k in range(n):
        t = start + 4.0 * k / n
        record = FrameRecord(brightness=0.5, motion=0.01, face=k >= face_from)
        seen = FrameBehaviour(t, False)
        if record.face:
            record.face_confidence = float(rng.uniform(0.5, 1.0))
            record.expression = rng.dirichlet(np.ones(7) * 0.5).tolist()
            seen = FrameBehaviour(t, True, ear=0.3, yaw_deg=5.0, pitch_deg=-3.0,
                                  roll_deg=1.0, mouth_open=0.05, brow_lowering=0.0)
        frames.append((t, record, seen))
    return frames


def _window(rng: np.random.Generator, frames: list[tuple[float, FrameRecord, FrameBehaviour]],
            start: float, utterances: list[HeardUtterance], stress=None) -> FusionInput:
    visual, visual_mask = visual_steps([(t, record) for t, record, _ in frames],
                                       [seen for _, _, seen in frames], [start + 1.1],
                                       start, start + 4.0)
    voice = np.zeros((spec.STEPS, 5))
    voice[:, 0] = 50
    voice[:, 1:3] = 30
    voice[:, 3] = rng.uniform(100, 200, spec.STEPS)
    voice[:, 4] = -30
    audio, audio_mask = audio_steps(voice)
    text, text_mask = text_steps(utterances, start, start + 4.0)
    physio, physio_mask = physio_vector({"heart_rate": 75.0, "blink_rate": 12.0})
    z, z_mask = stress_vector(stress) if stress is not None else no_stress()
    return FusionInput(visual, visual_mask, audio, audio_mask, text, text_mask, physio,
                       physio_mask, z, z_mask)


def test_shipped_defaults_compute_the_documented_expert_fusion() -> None:
    """Emotion: the confidence-weighted mean of the frames' expression distributions;
    valence and arousal: its PAD expectation, valence mixed 0.7/0.3 with the text sentiment;
    stress: models/stress/index.py's number, for random windows and random baselines."""
    model = FusionModel(DEFAULT_FILE)
    assert model.expert
    rng = np.random.default_rng(0)
    for trial in range(12):
        start = 100.0 + 4 * trial
        frames = _frames(rng, start, face_from=int(rng.integers(0, 50)))
        utterances = ([HeardUtterance("a good day", True, round((start + 0.5) * NS),
                                      round((start + 2.0) * NS), float(rng.uniform(-1, 1)))]
                      if trial % 2 else [])
        baseline = Baseline(min_samples=3)
        for _ in range(10):
            baseline.add({"heart_rate": rng.normal(70, 3), "hrv_rmssd": rng.normal(45, 6),
                          "f0_mean": rng.normal(120, 6), "blink_rate": rng.normal(15, 3),
                          "jitter": rng.normal(1, 0.2), "negative_affect": rng.uniform(0, .3)})
        inputs = {"heart_rate": rng.normal(80, 8), "hrv_rmssd": rng.normal(40, 10),
                  "f0_mean": rng.normal(130, 15), "blink_rate": rng.normal(16, 4),
                  "jitter": rng.normal(1.1, 0.3), "negative_affect": rng.uniform(0, 0.5)}
        for name in rng.choice(list(inputs), size=int(rng.integers(0, 3)), replace=False):
            inputs[name] = None
        expected_stress = index_of(inputs, {"face": {"present": 1.0}}, baseline)
        window = _window(rng, frames, start, utterances, expected_stress)
        (out,) = model.run([(model.new_context(), window)])

        faces = [r for _, r, _ in frames if r.face]
        conf = np.array([r.face_confidence for r in faces])
        emotion = np.average([r.expression for r in faces], axis=0, weights=conf)
        np.testing.assert_allclose(list(out.emotions.values()), emotion, atol=1e-5)
        face_v = float(emotion @ [spec.EMOTION_VALENCE[e] for e in spec.EMOTIONS])
        face_a = float(emotion @ [spec.EMOTION_AROUSAL[e] for e in spec.EMOTIONS])
        valence = (0.7 * face_v + 0.3 * utterances[0].sentiment if utterances else face_v)
        assert out.valence == pytest.approx(valence, abs=1e-5)
        assert out.arousal == pytest.approx(face_a, abs=1e-5)
        assert expected_stress.value is not None
        assert out.stress == pytest.approx(expected_stress.value, abs=1e-3)
        for name, share in expected_stress.contributions.items():
            assert out.stress_contributions[name] == pytest.approx(share, abs=1e-5)
        assert sum(out.modality_gates.values()) == pytest.approx(1.0, abs=1e-6)


def test_defaults_ignore_the_past_until_trained() -> None:
    """The context graph starts as the identity: a window scores the same after any history."""
    model = FusionModel(DEFAULT_FILE)
    rng = np.random.default_rng(1)
    window = _window(rng, _frames(rng, 0.0), 0.0, [])
    (fresh,) = model.run([(model.new_context(), window)])
    stream = model.new_context()
    for k in range(5):
        model.run([(stream, _window(rng, _frames(rng, 4.0 * k), 4.0 * k, []))])
    (after,) = model.run([(stream, window)])
    assert stream.mask.sum() == 6
    np.testing.assert_allclose(list(after.emotions.values()), list(fresh.emotions.values()),
                               atol=1e-6)


def test_stress_weights_are_those_of_the_documented_index() -> None:
    assert dict(zip(spec.STRESS_INPUTS, spec.STRESS_LOG_WEIGHTS)) == WEIGHTS
    assert spec.STRESS_SLOPE == 1.5 and math.isclose(sum(WEIGHTS.values()), 1.0)


def test_shipped_file_is_what_the_code_builds(tmp_path: Path) -> None:
    """Rebuilding the defaults gives the shipped file's outputs (so the file is not stale)."""
    rebuilt = FusionModel(build_default(tmp_path / "fusion_default.onnx"))
    shipped = FusionModel(DEFAULT_FILE)
    inputs = {n: t.numpy() for n, t in zip(spec.INPUT_NAMES, example_inputs(5, seed=9))}
    for a, b in zip(rebuilt.session.run(None, inputs), shipped.session.run(None, inputs)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with torch.no_grad():
        ref = expert_network()(*example_inputs(5, seed=9))
    np.testing.assert_allclose(ref[0].numpy(), shipped.session.run(["emotion"], inputs)[0],
                               atol=1e-5)


def test_a_stream_with_two_due_windows_gets_them_in_order() -> None:
    model = FusionModel(DEFAULT_FILE)
    rng = np.random.default_rng(2)
    w1, w2 = (_window(rng, _frames(rng, s), s, []) for s in (0.0, 0.5))
    other = _window(rng, _frames(rng, 0.0), 0.0, [])
    a, b = model.new_context(), model.new_context()
    outs = model.run([(a, w1), (b, other), (a, w2)])
    assert len(outs) == 3
    assert a.mask.sum() == 2 and b.mask.sum() == 1
    ctx, mask = empty_context()
    assert ctx.shape == (spec.CONTEXT_WINDOWS, spec.DIM) and not mask.any()


def test_stress_through_the_fusion_model_rises_with_pulse_and_pitch_and_is_never_zero() -> None:
    """The node's path: gate and baseline (models/stress/index.py), then the shipped model, then
    the score message. A raised pulse and pitch against a calm baseline minute raise the
    index; a missing face makes it inconclusive with the reason, not a number."""
    from tests.unit.test_stress import after_baseline, calm_emotions, calm_signals, quality
    from wellmon.models.fusion.outputs import fused_fields
    from wellmon.streamer.wire.score import ScoreMessage

    model = FusionModel(DEFAULT_FILE)
    stream = model.new_context()
    index, rng, t = after_baseline()
    frames = _frames(rng, t)

    def scored(signals: dict, face: float) -> ScoreMessage:
        result = index.update(signals, calm_emotions(rng), quality(face=face), t + 0.5)
        window = _window(rng, frames if face > 0.5 else [], t - 3.5, [], result)
        (out,) = model.run([(stream, window)]) if any(window.present.values()) else (None,)
        score = ScoreMessage("s", 1, t - 3.5, t + 0.5, "live", signals, {}, {},
                             **fused_fields(out, window, result, model.expert, {}, t - 3.5,
                                            t + 0.5))
        if result.value is not None:
            assert score.stress == pytest.approx(result.value, abs=0.051)
        return score

    calm = scored(calm_signals(rng), 1.0)
    raised = scored(calm_signals(rng, heart_rate=15.0, f0_mean=20.0), 1.0)
    assert calm.stress is not None and 30 < calm.stress < 70
    assert raised.stress is not None and raised.stress > 70 and raised.stress > calm.stress
    assert raised.drivers[0]["input"] in ("heart_rate", "f0_mean")
    faceless = calm_signals(rng)
    faceless["f0_mean"] = None
    gone = scored(faceless, 0.2)
    assert gone.stress is None
    assert gone.reasons["stress"] == "inconclusive: no face for 80% of the window"


# ------------------------------------------------------------------ clear errors


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file not found: .*nope\.onnx"):
        FusionModel(tmp_path / "nope.onnx")


def test_a_model_with_other_inputs_is_refused_with_the_mismatch() -> None:
    other = DEFAULT_FILE.parent / "emotion_minixception.onnx"
    with pytest.raises(ModelError, match=r"emotion_minixception\.onnx has inputs"):
        FusionModel(other)


def test_a_model_built_for_other_features_is_refused(tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(DEFAULT_FILE))
    dim = model.graph.input[spec.INPUT_NAMES.index("physio")].type.tensor_type.shape.dim[1]
    dim.dim_value = len(spec.PHYSIO_FEATURES) + 1
    path = tmp_path / "old.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"old\.onnx.*(physio|invalid|cannot load)"):
        FusionModel(path)


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot load model .*garbage\.onnx"):
        FusionModel(path)
