"""GAAM against the paper authors' reference module, under masks, through ONNX, and in training.

The reference is ``gaussian_adaptive_attention`` (PyPI ``gaussian-adaptive-attention`` 0.1.5),
a test-only dependency: without it the parity tests skip, the rest still run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the fusion model trains in it")

from wellmon.models.training.gaam import MultiHeadGaussianAdaptiveAttention  # noqa: E402

TOL = 1e-5

# (batch, time, features, heads, gaussians, norm_axis)
CASES = [
    (2, 10, 8, 2, 1, 1),
    (3, 17, 5, 3, 2, 1),
    (1, 9, 12, 4, 3, 1),
    (4, 33, 6, 1, 1, 1),
    (5, 64, 16, 4, 2, 1),
    (2, 7, 12, 4, 2, -1),  # attention over features, as the reference allows
    (6, 5, 3, 2, 2, 0),  # attention over batch: any axis works
]


def reference_module():
    """The authors' module class, or a skip saying why there is nothing to compare with."""
    ref = pytest.importorskip(
        "gaussian_adaptive_attention",
        reason="reference GAAM not installed (pip install gaussian-adaptive-attention==0.1.5)")
    return ref.MultiHeadGaussianAdaptiveAttention


def make_pair(heads: int, gaussians: int, axis: int, randomise: bool):
    """A reference module and ours holding identical parameters."""
    ref = reference_module()(axis, heads, gaussians)
    ours = MultiHeadGaussianAdaptiveAttention(heads, gaussians, norm_axis=axis)
    with torch.no_grad():
        for h, head in enumerate(ref.attention_heads):
            if randomise:
                head.mean_offsets.copy_(0.5 * torch.randn(gaussians))
                head.c.copy_(torch.rand(gaussians) * 2.0 + 0.3)
            ours.mean_offsets[h].copy_(head.mean_offsets)
            ours.scales[h].copy_(head.c)
    return ref, ours


@pytest.mark.parametrize("randomise", [False, True], ids=["init", "random-params"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_matches_reference(case: tuple[int, ...], seed: int, randomise: bool) -> None:
    batch, time, feats, heads, gaussians, axis = case
    torch.manual_seed(seed)
    ref, ours = make_pair(heads, gaussians, axis, randomise)
    x = torch.randn(batch, time, feats) * 3.0 + 1.0
    ref_out, ref_w = ref(x, return_attention_details=True)
    out, w = ours(x)
    assert out.shape == x.shape and w.shape == x.shape
    assert torch.isfinite(out).all()
    assert (out - ref_out).abs().max().item() < TOL
    assert (w - ref_w).abs().max().item() < TOL


@pytest.mark.parametrize("seed", range(20))
def test_matches_reference_float64_any_width(seed: int) -> None:
    """In float64 the equations agree to rounding even for very narrow Gaussians.

    With |c| near 0 the exponent is ill-conditioned: in float32 both implementations are then
    ~1e-5 away from the float64 result, so the float32 tests keep |c| at the default draw.
    """
    gen = torch.Generator().manual_seed(seed)
    heads, gaussians = 1 + seed % 4, 1 + seed % 3
    time = int(torch.randint(2 * heads, 90, (1,), generator=gen))
    torch.manual_seed(seed)
    ref, ours = make_pair(heads, gaussians, 1, randomise=False)
    ref, ours = ref.double(), ours.double()
    x = torch.randn(3, time, 6, generator=gen, dtype=torch.float64) * 3.0
    ref_out, ref_w = ref(x, return_attention_details=True)
    out, w = ours(x)
    assert (out - ref_out).abs().max().item() < 1e-10
    assert (w - ref_w).abs().max().item() < 1e-10


def test_weights_normalise_per_head_chunk() -> None:
    """Weights sum to 1 over each head's chunk of the axis and the output is x times them."""
    torch.manual_seed(3)
    gaam = MultiHeadGaussianAdaptiveAttention(3, 2)
    with torch.no_grad():  # moderate widths: very narrow ones underflow, in the reference too
        gaam.scales.uniform_(0.5, 2.0)
    x = torch.randn(2, 11, 4)  # chunks of 3, 3 and 5 steps
    out, w = gaam(x)
    sums = [w[:, a:b].sum(dim=1) for a, b in ((0, 3), (3, 6), (6, 11))]
    for s in sums:
        torch.testing.assert_close(s, torch.ones_like(s))
    torch.testing.assert_close(out, x * w)


def random_mask(batch: int, time: int, gen: torch.Generator) -> torch.Tensor:
    mask = torch.rand(batch, time, generator=gen) > 0.35
    mask[:, 0] = True  # keep at least one valid step per sequence
    return mask


@pytest.mark.parametrize("heads,gaussians", [(1, 1), (2, 2), (4, 3)])
def test_masked_steps_have_no_influence(heads: int, gaussians: int) -> None:
    gen = torch.Generator().manual_seed(heads)
    torch.manual_seed(heads)
    gaam = MultiHeadGaussianAdaptiveAttention(heads, gaussians)
    x = torch.randn(6, 40, 10, generator=gen)
    mask = random_mask(6, 40, gen)
    out, w = gaam(x, mask)
    noisy = torch.where(mask[..., None], x, torch.randn(x.shape, generator=gen) * 1e6)
    out2, w2 = gaam(noisy, mask)
    assert torch.isfinite(out2).all() and torch.isfinite(w2).all()
    valid = mask[..., None].expand_as(x)
    assert (out[valid] - out2[valid]).abs().max().item() <= 1e-6
    assert (w[valid] - w2[valid]).abs().max().item() <= 1e-6
    assert (out2[~valid] == 0).all() and (w2[~valid] == 0).all()


def test_statistics_use_valid_steps_only() -> None:
    """With one head, a padded tail gives what the unpadded sequence gives."""
    torch.manual_seed(5)
    gaam = MultiHeadGaussianAdaptiveAttention(1, 2)
    x = torch.randn(3, 25, 7)
    lengths = [25, 12, 4]
    mask = torch.arange(25)[None, :] < torch.tensor(lengths)[:, None]
    out, w = gaam(x * 50.0 - 9.0 * ~mask[..., None], mask)
    for b, n in enumerate(lengths):
        alone, w_alone = gaam(x[b : b + 1, :n] * 50.0)
        torch.testing.assert_close(out[b : b + 1, :n], alone, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(w[b : b + 1, :n], w_alone, atol=1e-6, rtol=1e-6)


def test_all_valid_mask_equals_no_mask() -> None:
    torch.manual_seed(6)
    gaam = MultiHeadGaussianAdaptiveAttention(4, 2)
    x = torch.randn(3, 21, 9)
    out, w = gaam(x)
    out_m, w_m = gaam(x, torch.ones(3, 21, dtype=torch.bool))
    assert torch.equal(out, out_m) and torch.equal(w, w_m)


def test_degenerate_heads_stay_finite() -> None:
    """A head with zero or one valid step must not poison the batch with NaN."""
    torch.manual_seed(7)
    gaam = MultiHeadGaussianAdaptiveAttention(2, 1)
    x = torch.randn(2, 8, 3)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, 0] = True  # head 0: one valid step, head 1: none
    out, w = gaam(x, mask)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    assert (out[1] == 0).all()


def test_too_few_steps_for_heads_is_an_error() -> None:
    with pytest.raises(ValueError):
        MultiHeadGaussianAdaptiveAttention(4)(torch.randn(1, 3, 2))


def test_gradients_reach_parameters() -> None:
    torch.manual_seed(8)
    gaam = MultiHeadGaussianAdaptiveAttention(2, 2)
    x = torch.randn(4, 16, 5, requires_grad=True)
    mask = random_mask(4, 16, torch.Generator().manual_seed(8))
    out, _ = gaam(x, mask)
    (out * torch.randn_like(out)).sum().backward()
    for p in (gaam.mean_offsets, gaam.scales, x):
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert (gaam.mean_offsets.grad != 0).all() and (gaam.scales.grad != 0).all()


class _WithMask(torch.nn.Module):
    def __init__(self, gaam: MultiHeadGaussianAdaptiveAttention) -> None:
        super().__init__()
        self.gaam = gaam

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gaam(x, mask)


@pytest.mark.parametrize("with_mask", [False, True], ids=["no-mask", "mask"])
def test_onnx_export_matches_torch(tmp_path: Path, with_mask: bool) -> None:
    pytest.importorskip("onnx", reason="onnx not installed: cannot export")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: cannot run")
    torch.manual_seed(9)
    gaam = MultiHeadGaussianAdaptiveAttention(3, 2).eval()
    model = _WithMask(gaam) if with_mask else gaam
    x = torch.randn(2, 12, 8)
    mask = torch.ones(2, 12, dtype=torch.bool)
    names = ["x", "mask"] if with_mask else ["x"]
    dyn = {n: {0: "batch", 1: "time"} for n in [*names, "out", "weights"]}
    path = tmp_path / "gaam.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x, mask) if with_mask else (x,), str(path), dynamo=False,
                          opset_version=17, input_names=names,
                          output_names=["out", "weights"], dynamic_axes=dyn)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(9)
    for batch in (1, 16):
        for time in (7, 50):
            x = torch.randn(batch, time, 8, generator=gen) * 2.0
            feeds = {"x": x.numpy()}
            if with_mask:
                mask = random_mask(batch, time, gen)
                feeds["mask"] = mask.numpy()
                want = gaam(x, mask)
            else:
                want = gaam(x)
            got = session.run(["out", "weights"], feeds)
            for g, t in zip(got, want, strict=True):
                assert g.shape == tuple(t.shape)
                assert np.abs(g - t.detach().numpy()).max() < TOL
