"""Every fusion architecture on the one contract: masked inputs reach no output, present ones
do, it starts out as the expert fusion, and onnxruntime reproduces torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the fusion model trains in it")

from wellmon.models.fusion import spec  # noqa: E402
from wellmon.models.fusion.serving import FusionModel  # noqa: E402
from wellmon.models.training.architectures import ARCHITECTURES, make_network  # noqa: E402
from wellmon.models.training.export import expert_network, export_onnx  # noqa: E402
from wellmon.models.training.network import example_inputs  # noqa: E402

MASKED_INPUTS = {"visual": "visual_mask", "audio": "audio_mask", "text": "text_mask",
                 "physio": "physio_mask", "stress_z": "stress_mask", "context": "context_mask"}


def trained_like(arch: str, seed: int = 0):
    """A network of `arch` whose every parameter is moved off its start, as training would."""
    torch.manual_seed(seed)
    net = make_network(arch).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def run(net, inputs) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {n: o.numpy() for n, o in zip(spec.OUTPUT_NAMES, net(*inputs))}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("modality", list(MASKED_INPUTS))
def test_masked_values_reach_no_output(arch: str, modality: str) -> None:
    net = trained_like(arch)
    inputs = list(example_inputs(6, seed=1))
    i, j = spec.INPUT_NAMES.index(modality), spec.INPUT_NAMES.index(MASKED_INPUTS[modality])
    mask = inputs[j].clone()
    mask[0] = False  # one window without this modality at all
    inputs[j] = mask
    before = run(net, inputs)
    noise = 1e4 * torch.randn(inputs[i].shape, generator=torch.Generator().manual_seed(7))
    keep = mask.reshape(mask.shape + (1,) * (inputs[i].dim() - mask.dim()))
    inputs[i] = torch.where(keep, inputs[i], noise)
    after = run(net, inputs)
    for name in spec.OUTPUT_NAMES:
        assert np.isfinite(after[name]).all(), name
        np.testing.assert_array_equal(before[name], after[name], err_msg=f"{arch} {name}")


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_what_is_present_moves_the_scores(arch: str) -> None:
    net = trained_like(arch)
    inputs = list(example_inputs(4, seed=2))
    before = run(net, inputs)
    for modality in ("audio", "text"):
        changed = list(inputs)
        changed[spec.INPUT_NAMES.index(modality)] = changed[spec.INPUT_NAMES.index(modality)] + 1
        assert not np.allclose(before["emotion"], run(net, changed)["emotion"]), modality


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_starts_as_the_expert_fusion(arch: str) -> None:
    torch.manual_seed(3)
    inputs = example_inputs(5, seed=3)
    expert, fresh = run(expert_network(), inputs), run(make_network(arch).eval(), inputs)
    for name in ("emotion", "valence", "arousal", "stress", "stress_contributions"):
        np.testing.assert_allclose(fresh[name], expert[name], atol=1e-6, err_msg=name)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_onnx_reproduces_torch_at_batch_1_and_16(arch: str, tmp_path: Path) -> None:
    net = trained_like(arch, seed=4)
    path = export_onnx(net, tmp_path / f"{arch}.onnx", "test", {"wellmon.arch": arch})
    session = FusionModel(path).session
    for batch in (1, 16):
        inputs = example_inputs(batch, seed=batch)
        ref = run(net, inputs)
        got = dict(zip(spec.OUTPUT_NAMES, session.run(
            None, {n: t.numpy() for n, t in zip(spec.INPUT_NAMES, inputs)})))
        for name in spec.OUTPUT_NAMES:
            scale = 100.0 if name == "stress" else 1.0
            np.testing.assert_allclose(got[name] / scale, ref[name] / scale, atol=1e-4,
                                       rtol=0, err_msg=f"{arch} {name} batch {batch}")


def test_an_unknown_architecture_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'bimha2': expected one of "
                                         "gaam-corect, mmmla, mm-b, sc-lstm, bc-lstm, bimha, late"):
        make_network("bimha2")


def test_the_command_offers_every_architecture() -> None:
    from wellmon.cli import ARCH_NAMES

    assert ARCH_NAMES == tuple(ARCHITECTURES)


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path: Path) -> None:
    from wellmon.models.training.export import load_checkpoint, save_checkpoint

    save_checkpoint(make_network("mm-b"), tmp_path / "fusion.pt")
    net, _ = load_checkpoint(tmp_path / "fusion.pt")
    assert net.arch == "mm-b"
    with pytest.raises(ValueError, match=r"fusion\.pt is a mm-b checkpoint, not mmmla: "
                                         r"export it with --arch mm-b"):
        load_checkpoint(tmp_path / "fusion.pt", "mmmla")


def test_sc_lstm_reads_the_windows_before_and_only_those() -> None:
    """Its context is the last windows' vectors: another past changes the scores; the next
    context is this window's vector appended to the last K-1."""
    net = trained_like("sc-lstm")
    inputs = list(example_inputs(3, seed=5))
    out = run(net, inputs)
    c = spec.INPUT_NAMES.index("context")
    other = list(inputs)
    other[c] = inputs[c] + 1.0
    assert not np.allclose(out["emotion"], run(net, other)["emotion"])
    kept = inputs[c].numpy()[:, 1:][inputs[c + 1].numpy()[:, 1:]]
    np.testing.assert_array_equal(out["next_context"][:, :-1][out["next_context_mask"][:, :-1]],
                                  kept)
    assert out["next_context_mask"][:, -1].all()


def recording(windows: int, seed: int) -> list:
    """A recording of `windows` windows, as the node hands them to the fusion model."""
    from wellmon.models.fusion.features import FusionInput

    tensors = example_inputs(windows, seed=seed)[:len(spec.INPUT_NAMES) - 2]
    return [FusionInput(*(t[i].numpy() for t in tensors)) for i in range(windows)]


def emotions_of(model: FusionModel, windows: list) -> np.ndarray:
    return np.array([list(o.emotions.values()) for o in model.run_recording(windows)])


@pytest.mark.parametrize("arch, reads_later", [("bc-lstm", True), ("sc-lstm", False)])
def test_only_bc_lstm_reads_the_windows_after_each_one(arch: str, reads_later: bool,
                                                       tmp_path: Path) -> None:
    """bc-lstm's output for a window changes when a later window changes; a causal model's
    does not. Served files say which they are."""
    model = FusionModel(export_onnx(trained_like(arch), tmp_path / f"{arch}.onnx", "test"))
    assert model.causal is not reads_later
    windows = recording(8, seed=6)
    changed = windows[:5] + recording(8, seed=7)[5:]  # from window 5 on
    before, after = emotions_of(model, windows), emotions_of(model, changed)
    reach = model.k_past - model.context_before  # how many later windows each one reads
    assert reach == (4 if reads_later else 0)
    np.testing.assert_array_equal(before[:5 - reach], after[:5 - reach])
    for t in range(5 - reach, 8):
        assert not np.allclose(before[t], after[t]), t


@pytest.mark.parametrize("arch", ["bc-lstm", "sc-lstm", "gaam-corect"])
def test_training_runs_a_recording_as_the_node_does(arch: str, tmp_path: Path) -> None:
    """The torch pass that training and evaluation use gives onnxruntime's outputs over
    whole recordings of different lengths, context and neighbours included."""
    from wellmon.models.training.datasets import Sample
    from wellmon.models.training.train import Clip, run_clips

    net = trained_like(arch, seed=8)
    model = FusionModel(export_onnx(net, tmp_path / f"{arch}.onnx", "test"))
    clips = [Clip(Sample(Path(f"{n}.mp4"), "happy", "a"), recording(n, seed=n))
             for n in (3, 9, 6)]
    with torch.no_grad():
        torch_emotions, _, _ = run_clips(net, clips)
    for clip, log_probs in zip(clips, torch_emotions):
        np.testing.assert_allclose(emotions_of(model, clip.windows), log_probs.exp().numpy(),
                                   atol=1e-4, rtol=0, err_msg=f"{arch} {len(clip.windows)}")


def test_a_model_that_reads_later_windows_is_refused_live(tmp_path: Path) -> None:
    from dataclasses import replace

    from wellmon.config import PerceptionConfig
    from wellmon.models.errors import ModelError
    from wellmon.models.fusion.serving import load_fusion

    path = export_onnx(trained_like("bc-lstm"), tmp_path / "bc.onnx", "test")
    perception = replace(PerceptionConfig(), fusion_model=str(path))
    assert not load_fusion(perception).causal  # replay may run it
    with pytest.raises(ModelError, match=r"^perception\.fusion_model .*bc\.onnx: a bc-lstm "
                                         r"model reads the windows after each one, so it "
                                         r"cannot be served live; use it with `wellmon "
                                         r"replay`"):
        load_fusion(perception, live=True)


def test_score_level_fusion_weighs_each_classifier_by_its_validation_accuracy() -> None:
    """A classifier that scored nothing on validation has no say in the emotion; the weights
    of the others are renormalised over the modalities present in a window. (The face's
    expression distribution, the expert prior every architecture starts from, is outside
    the weighting.)"""
    net = trained_like("late")
    net.weigh({("visual",): 0.3, ("audio",): 0.6, ("text",): 0.0, ("physio",): 0.0})
    inputs = list(example_inputs(4, seed=9))
    before = run(net, inputs)
    for silent in ("text", "physio"):
        changed = list(inputs)
        changed[spec.INPUT_NAMES.index(silent)] = changed[spec.INPUT_NAMES.index(silent)] + 5
        np.testing.assert_array_equal(before["emotion"], run(net, changed)["emotion"])
    audio_mask = spec.INPUT_NAMES.index("audio_mask")
    no_audio = list(inputs)
    no_audio[audio_mask] = torch.zeros_like(inputs[audio_mask])
    gates = run(net, no_audio)["modality_gates"]
    face = inputs[spec.INPUT_NAMES.index("visual_mask")].any(dim=1).numpy()
    np.testing.assert_allclose(gates[face, spec.MODALITIES.index("visual")], 1.0, atol=1e-6)
    with_audio = run(net, inputs)["modality_gates"]
    both = face & inputs[audio_mask].any(dim=1).numpy()
    np.testing.assert_allclose(with_audio[both][:, [0, 1]], [[1 / 3, 2 / 3]] * both.sum(),
                               atol=1e-6)
