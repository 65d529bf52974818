"""Fusion building blocks: masking, identity start, causality, gradients, ONNX parity."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: the fusion model trains in it")

from wellmon.models.training.layers import (  # noqa: E402
    AttentionPooling,
    CausalContextGraph,
    CrossModalAttention,
    GatedMultimodalUnit,
)

TOL = 1e-6
ONNX_TOL = 1e-5
D = 8
K = 4
DIMS = [5, 7, 3]


def _mask(batch: int, steps: int, gen: torch.Generator, all_masked_row: bool = True
          ) -> torch.Tensor:
    """Random validity with at least one valid step per row, and optionally one empty row."""
    mask = torch.rand(batch, steps, generator=gen) > 0.4
    mask[:, 0] = True
    if all_masked_row and batch > 1:
        mask[1] = False
    return mask


def _scramble(x: torch.Tensor, valid: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Replace invalid rows of ``x`` (``valid`` broadcast over trailing dims) by huge values."""
    noise = torch.randn(x.shape, generator=gen) * 1e6
    return torch.where(valid.reshape(valid.shape + (1,) * (x.dim() - valid.dim())), x, noise)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> bool:
    a, b = a.detach(), b.detach()
    return bool(torch.isfinite(a).all()) and float((a - b).abs().max()) <= tol


# ---------------------------------------------------------------- AttentionPooling


def test_pooling_masked_steps_have_no_influence() -> None:
    gen = torch.Generator().manual_seed(0)
    pool = AttentionPooling(D).eval()
    x = torch.randn(4, 11, D, generator=gen)
    mask = _mask(4, 11, gen)
    out, w = pool(x, mask)
    out2, w2 = pool(_scramble(x, mask, gen), mask)
    assert _close(out, out2) and _close(w, w2)
    assert torch.all(w[~mask] == 0)
    assert torch.allclose(w.sum(1), mask.any(1).float(), atol=1e-6)
    # the all-masked row: exact zeros, not NaN
    assert torch.all(out[1] == 0) and torch.all(w[1] == 0)


def test_pooling_without_mask_is_convex_combination() -> None:
    torch.manual_seed(1)
    pool = AttentionPooling(D, hidden=16).eval()
    x = torch.randn(3, 6, D)
    out, w = pool(x)
    assert torch.allclose(w.sum(1), torch.ones(3))
    assert torch.allclose(out, (w.unsqueeze(-1) * x).sum(1), atol=1e-6)
    out_m, _ = pool(x, torch.ones(3, 6, dtype=torch.bool))
    assert torch.equal(out, out_m)


# ---------------------------------------------------------------- CrossModalAttention


def test_cross_attention_masked_keys_have_no_influence() -> None:
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    layer = CrossModalAttention(D, 2).eval()
    a = torch.randn(4, 5, D, generator=gen)
    b = torch.randn(4, 9, D, generator=gen)
    mask = _mask(4, 9, gen)
    out, w = layer(a, b, mask)
    out2, w2 = layer(a, _scramble(b, mask, gen), mask)
    assert _close(out, out2) and _close(w, w2)
    assert w.shape == (4, 5, 9) and torch.all(w[~mask.unsqueeze(1).expand_as(w)] == 0)


def test_cross_attention_no_valid_key_means_no_influence() -> None:
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    layer = CrossModalAttention(D, 4).eval()
    a = torch.randn(2, 5, D, generator=gen)
    b = torch.randn(2, 9, D, generator=gen) * 1e6
    none = torch.zeros(2, 9, dtype=torch.bool)
    out, w = layer(a, b, none)
    # exactly what the layer computes with a zero attention contribution
    want = a + layer.ff(layer.norm_ff(a))
    assert _close(out, want) and torch.all(w == 0)
    out2, _ = layer(a, torch.randn(2, 3, D, generator=gen), torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(out, out2)


def test_cross_attention_zero_init_is_exact_identity() -> None:
    gen = torch.Generator().manual_seed(4)
    layer = CrossModalAttention(D, 2, zero_init=True).eval()
    a = torch.randn(3, 5, D, generator=gen) * 10
    b = torch.randn(3, 7, D, generator=gen)
    out, w = layer(a, b, _mask(3, 7, gen))
    assert torch.equal(out, a)  # pre-LN residual path: bit-exact, no LayerNorm on it
    assert torch.isfinite(w).all()


# ---------------------------------------------------------------- GatedMultimodalUnit


def _gmu_inputs(batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn(batch, d, generator=gen) for d in DIMS]


def test_gmu_masked_modalities_have_no_influence() -> None:
    gen = torch.Generator().manual_seed(5)
    gmu = GatedMultimodalUnit(DIMS, 6).eval()
    xs = _gmu_inputs(5, gen)
    mask = _mask(5, len(DIMS), gen)
    fused, gates = gmu(xs, mask)
    scrambled = [_scramble(x, mask[:, m], gen) for m, x in enumerate(xs)]
    fused2, gates2 = gmu(scrambled, mask)
    assert _close(fused, fused2) and _close(gates, gates2)
    assert torch.all(gates[~mask] == 0)
    assert torch.allclose(gates.sum(1), mask.any(1).float(), atol=1e-6)
    assert torch.all(fused[1] == 0) and fused.shape == (5, 6)


def test_gmu_single_valid_modality_takes_all_weight() -> None:
    gen = torch.Generator().manual_seed(6)
    gmu = GatedMultimodalUnit(DIMS, 6).eval()
    xs = _gmu_inputs(2, gen)
    mask = torch.tensor([[False, True, False], [True, True, True]])
    fused, gates = gmu(xs, mask)
    assert torch.allclose(gates[0], torch.tensor([0.0, 1.0, 0.0]))
    assert _close(fused[0], torch.tanh(gmu.hidden[1](xs[1][0])))
    assert torch.equal(gmu(xs)[0][1], fused[1])  # all valid == no mask


# ---------------------------------------------------------------- CausalContextGraph


def test_graph_masked_context_has_no_influence() -> None:
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    graph = CausalContextGraph(D, K, relations=2).eval()
    cur = torch.randn(4, D, generator=gen)
    ctx = torch.randn(4, K, D, generator=gen)
    mask = _mask(4, K, gen)
    res = graph(cur, ctx, mask)
    res2 = graph(cur, _scramble(ctx, mask, gen), mask)
    for r, r2 in zip(res[:2], res2[:2]):
        assert _close(r, r2)
    assert torch.equal(res[2], res2[2])
    # no valid context: self-loop only
    assert _close(res[0][1], graph.self_loop(cur[1]))


def test_graph_mean_over_valid_neighbours() -> None:
    torch.manual_seed(8)
    graph = CausalContextGraph(D, K).eval()
    cur, ctx = torch.randn(1, D), torch.randn(1, K, D)
    mask = torch.tensor([[False, True, False, True]])
    out, _, _ = graph(cur, ctx, mask)
    # index k has distance K - k, one relation per distance: weight index K - k - 1
    msg = sum(graph.rel_weight[K - k - 1] @ ctx[0, k] for k in (1, 3)) / 2
    assert _close(out[0], graph.self_loop(cur[0]) + msg, 1e-5)


def test_graph_roll_semantics_and_shapes() -> None:
    gen = torch.Generator().manual_seed(9)
    graph = CausalContextGraph(D, K).eval()
    cur = torch.randn(3, D, generator=gen)
    ctx = torch.randn(3, K, D, generator=gen)
    mask = torch.ones(3, K, dtype=torch.bool)
    mask[0, :2] = False
    out, nxt, nmask = graph(cur, ctx, mask)
    assert out.shape == (3, D) and nxt.shape == (3, K, D) and nmask.shape == (3, K)
    assert torch.equal(nxt[:, -1], cur)
    assert torch.equal(nxt[1:, :-1], ctx[1:, 1:])
    assert torch.all(nxt[0, 0] == 0) and torch.equal(nxt[0, 1:-1], ctx[0, 2:])
    assert torch.equal(nmask[:, :-1], mask[:, 1:]) and nmask[:, -1].all()
    # changing the current window changes only the newest slot of the next context
    _, nxt2, _ = graph(cur + 1.0, ctx, mask)
    assert torch.equal(nxt2[:, :-1], nxt[:, :-1]) and not torch.equal(nxt2[:, -1], nxt[:, -1])


def test_graph_streaming_is_causal() -> None:
    """Outputs at step t depend only on windows <= t: perturbing later windows changes nothing."""
    gen = torch.Generator().manual_seed(10)
    torch.manual_seed(10)
    graph = CausalContextGraph(D, K).eval()
    seq = torch.randn(2, 9, D, generator=gen)

    def run(x: torch.Tensor) -> torch.Tensor:
        ctx = torch.zeros(2, K, D)
        mask = torch.zeros(2, K, dtype=torch.bool)
        outs = []
        for t in range(x.shape[1]):
            out, ctx, mask = graph(x[:, t], ctx, mask)
            outs.append(out)
        return torch.stack(outs, 1)

    base = run(seq)
    later = seq.clone()
    later[:, 5:] = torch.randn(2, 4, D, generator=gen) * 100
    changed = run(later)
    assert torch.equal(base[:, :5], changed[:, :5])
    assert not torch.allclose(base[:, 5], changed[:, 5])
    # history older than K windows is forgotten
    early = seq.clone()
    early[:, 0] += 50.0
    assert torch.equal(run(early)[:, K + 1:], base[:, K + 1:])


def test_graph_zero_init_is_exact_identity() -> None:
    gen = torch.Generator().manual_seed(11)
    graph = CausalContextGraph(D, K, zero_init=True).eval()
    cur = torch.randn(3, D, generator=gen) * 10
    out, _, _ = graph(cur, torch.randn(3, K, D, generator=gen), _mask(3, K, gen))
    assert torch.equal(out, cur)


def test_graph_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        CausalContextGraph(D, 0)
    with pytest.raises(ValueError):
        CausalContextGraph(D, 3, relations=4)
    with pytest.raises(ValueError):
        CausalContextGraph(D, 3)(torch.zeros(1, D), torch.zeros(1, 2, D))


# ---------------------------------------------------------------- gradients


def test_gradients_reach_all_parameters_and_inputs() -> None:
    gen = torch.Generator().manual_seed(12)
    torch.manual_seed(12)
    pool = AttentionPooling(D)
    cross = CrossModalAttention(D, 2)
    gmu = GatedMultimodalUnit([D, D], D)
    graph = CausalContextGraph(D, K, relations=2)
    a = torch.randn(3, 6, D, generator=gen, requires_grad=True)
    b = torch.randn(3, 4, D, generator=gen, requires_grad=True)
    ctx = torch.randn(3, K, D, generator=gen, requires_grad=True)
    bmask = torch.tensor([[True] * 4, [False] * 4, [True, False, True, False]])
    z, _ = cross(a, b, bmask)
    pa, _ = pool(z, torch.ones(3, 6, dtype=torch.bool))
    pb, _ = pool(b, bmask)
    fused, _ = gmu([pa, pb], torch.tensor([[True, True], [True, False], [True, True]]))
    out, _, _ = graph(fused, ctx, torch.ones(3, K, dtype=torch.bool))
    out.pow(2).sum().backward()
    for module in (pool, cross, gmu, graph):
        for name, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
    for t in (a, b, ctx):
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert torch.all(b.grad[1] == 0)  # sample 1's B is fully masked


def test_zero_init_layers_still_learn() -> None:
    """Identity start must not be a dead start: zeroed weights receive gradient."""
    torch.manual_seed(13)
    cross = CrossModalAttention(D, 2, zero_init=True)
    graph = CausalContextGraph(D, K, zero_init=True)
    z, _ = cross(torch.randn(2, 3, D), torch.randn(2, 5, D))
    out, _, _ = graph(z[:, 0], torch.randn(2, K, D))
    out.pow(2).sum().backward()
    assert cross.out_proj.weight.grad.abs().sum() > 0
    assert cross.ff[-1].weight.grad.abs().sum() > 0
    assert graph.rel_weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- ONNX


class _Gmu3(torch.nn.Module):
    """Positional-argument wrapper: ONNX inputs are flat tensors."""

    def __init__(self, gmu: GatedMultimodalUnit) -> None:
        super().__init__()
        self.gmu = gmu

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gmu([x0, x1, x2], mask)


def _export(model: torch.nn.Module, args: tuple, names: list[str], outs: list[str],
            dyn: dict, path: Path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: cannot run")
    pytest.importorskip("onnx", reason="onnx not installed: cannot export")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, str(path), dynamo=False, opset_version=17,
                          input_names=names, output_names=outs, dynamic_axes=dyn)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check(session, model: torch.nn.Module, feeds: dict[str, torch.Tensor],
           outs: list[str]) -> None:
    with torch.no_grad():
        want = model(*feeds.values())
    got = session.run(outs, {k: v.numpy() for k, v in feeds.items()})
    for g, t in zip(got, want, strict=True):
        assert g.shape == tuple(t.shape)
        if g.dtype == np.bool_:
            assert np.array_equal(g, t.numpy())
            continue
        assert np.isfinite(g).all()
        assert np.abs(g - t.numpy()).max() < ONNX_TOL


@pytest.mark.parametrize("kind", ["pool", "cross", "gmu", "graph"])
def test_onnx_export_matches_torch(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(14)
    gen = torch.Generator().manual_seed(14)
    path = tmp_path / f"{kind}.onnx"
    if kind == "pool":
        model = AttentionPooling(D)
        names, outs = ["x", "mask"], ["pooled", "weights"]
        dyn = {"x": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}, "pooled": {0: "b"},
               "weights": {0: "b", 1: "t"}}
        sizes = [(1, 7), (16, 50), (16, 3)]

        def feeds(bs: int, t: int) -> dict[str, torch.Tensor]:
            return {"x": torch.randn(bs, t, D, generator=gen), "mask": _mask(bs, t, gen)}
    elif kind == "cross":
        model = CrossModalAttention(D, 2)
        names, outs = ["a", "b", "b_mask"], ["out", "weights"]
        dyn = {"a": {0: "b", 1: "ta"}, "b": {0: "b", 1: "tb"}, "b_mask": {0: "b", 1: "tb"},
               "out": {0: "b", 1: "ta"}, "weights": {0: "b", 1: "ta", 2: "tb"}}
        sizes = [(1, 7), (16, 50), (16, 3)]

        def feeds(bs: int, t: int) -> dict[str, torch.Tensor]:
            return {"a": torch.randn(bs, t + 2, D, generator=gen),
                    "b": torch.randn(bs, t, D, generator=gen), "b_mask": _mask(bs, t, gen)}
    elif kind == "gmu":
        model = _Gmu3(GatedMultimodalUnit(DIMS, 6))
        names, outs = ["x0", "x1", "x2", "mask"], ["fused", "gates"]
        dyn = {n: {0: "b"} for n in names + outs}
        sizes = [(1, 0), (16, 0)]

        def feeds(bs: int, t: int) -> dict[str, torch.Tensor]:
            xs = _gmu_inputs(bs, gen)
            return {"x0": xs[0], "x1": xs[1], "x2": xs[2], "mask": _mask(bs, len(DIMS), gen)}
    else:
        model = CausalContextGraph(D, K, relations=3)
        names, outs = ["current", "context", "context_mask"], ["out", "next_context",
                                                               "next_mask"]
        dyn = {n: {0: "b"} for n in names + outs}
        sizes = [(1, 0), (16, 0)]

        def feeds(bs: int, t: int) -> dict[str, torch.Tensor]:
            return {"current": torch.randn(bs, D, generator=gen),
                    "context": torch.randn(bs, K, D, generator=gen),
                    "context_mask": _mask(bs, K, gen)}

    model.eval()
    session = _export(model, tuple(feeds(2, 5).values()), names, outs, dyn, path)
    for bs, t in sizes:
        _check(session, model, feeds(bs, t), outs)
