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
                                         "gaam-corect, mmmla, mm-b, sc-lstm"):
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
