"""Masked, ONNX-exportable building blocks of the fusion network.

* :class:`AttentionPooling`: Bahdanau-style context attention that pools a sequence to one
  vector, so silent or uninformative steps can be down-weighted instead of averaged in.
* :class:`CrossModalAttention`: one pre-LayerNorm cross-modal transformer layer (MulT,
  CORECT's P-CM) that lets modality A read an unaligned modality B.
* :class:`GatedMultimodalUnit`: GMU (Arevalo et al. 2017) for M modalities, so the network
  learns per sample how much to trust each modality and a missing one is ignored.
* :class:`CausalContextGraph`: CORECT's RT-GCN restricted to past windows (F = 0), since
  the monitor runs live and cannot wait for the future; context is passed in and out as
  tensors so the exported graph stays stateless.

Conventions shared by all modules: boolean masks with True = valid; masked values are
replaced by zeros before any arithmetic, so they cannot change outputs (not even through
``inf``/``NaN``); softmax uses a large negative *finite* fill (``NEG``) instead of ``-inf``
and the weights are multiplied by the mask afterwards, so an all-masked row yields zero
weights rather than NaN. There is no Python control flow on tensor values, so
``torch.onnx.export(dynamo=False, opset_version=17)`` keeps batch and time dynamic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

NEG = -1e9  # masked score: exp(NEG - max) underflows to exactly 0 without -inf arithmetic


def _valid(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """Boolean validity ``[B, T]`` for ``like`` ``[B, T, ...]``; all True without a mask."""
    if mask is None:
        return torch.ones(like.shape[:2], dtype=torch.bool, device=like.device)
    if mask.dim() != 2:
        raise ValueError(f"mask must be [batch, steps], got {mask.dim()} dimensions")
    return mask.to(torch.bool)


def _zero_masked(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace masked rows of ``x`` ``[B, T, D]`` by zeros (``where``, not multiply: inf-safe)."""
    return torch.where(valid.unsqueeze(-1), x, torch.zeros_like(x))


def masked_softmax(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis where invalid entries get exactly 0; all-invalid rows -> 0."""
    scores = torch.where(valid, scores, torch.full_like(scores, NEG))
    return torch.softmax(scores, dim=-1) * valid.to(scores.dtype)


class AttentionPooling(nn.Module):
    """Pools ``[B, T, D]`` to ``[B, D]`` with ``score_t = v^T tanh(W x_t + b)``.

    Learned weights let salient steps (speech, a visible face) dominate, which beat mean
    pooling for speech emotion (Mirsamadi et al. 2017). ``hidden`` defaults to ``dim``.
    """

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden or dim)
        self.score = nn.Linear(hidden or dim, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(pooled [B, D], weights [B, T])``; no valid step gives zeros for both."""
        if x.dim() != 3:
            raise ValueError(f"x must be [batch, time, dim], got {x.dim()} dimensions")
        valid = _valid(mask, x)
        x = _zero_masked(x, valid)
        scores = self.score(torch.tanh(self.proj(x))).squeeze(-1)  # [B, T]
        weights = masked_softmax(scores, valid)
        pooled = torch.matmul(weights.unsqueeze(1), x).squeeze(1)
        return pooled, weights


class CrossModalAttention(nn.Module):
    """Pre-LayerNorm cross-modal transformer layer: modality A attends to modality B.

    As in MulT's cross-modal layer (``normalize_before``) and CORECT's P-CM::

        h   = a + any_valid(B) * MHA(LN_q(a), LN_kv(b), LN_kv(b))
        out = h + FF(LN_ff(h))

    Pre-LN keeps the residual path free of normalisation, so ``zero_init=True`` (zeroed
    attention output projection and last feed-forward linear) makes the layer *exactly*
    the identity at start, which the shipped default weights rely on. A post-LN layer
    could only reach ``LN(LN(a))``. Stack layers and, as MulT does, apply a final
    LayerNorm after the stack if wanted.

    ``any_valid(B)`` is 1 for a sample with at least one valid key and 0 otherwise, so a
    sample whose B stream is entirely missing gets ``out = a + FF(LN_ff(a))``: B has no
    influence. Query positions are independent, so padded queries cannot affect valid
    ones; their outputs are just ignored by the caller.
    """

    def __init__(self, dim: int, heads: int, ff_mult: int = 4, dropout: float = 0.0,
                 zero_init: bool = False) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(ff_mult * dim, dim))
        self.drop = nn.Dropout(dropout)
        if zero_init:
            for layer in (self.out_proj, self.ff[-1]):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` -> ``[B, H, T, D/H]``."""
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor, b_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(out [B, Ta, D], weights [B, Ta, Tb])``; weights are the head mean."""
        if a.dim() != 3 or b.dim() != 3:
            raise ValueError("a and b must be [batch, time, dim]")
        valid = _valid(b_mask, b)  # [B, Tb]
        b = _zero_masked(b, valid)
        q = self._split(self.q_proj(self.norm_q(a)))
        kv = self.norm_kv(b)
        k = self._split(self.k_proj(kv))
        v = self._split(self.v_proj(kv))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        weights = masked_softmax(scores, valid[:, None, None, :])  # [B, H, Ta, Tb]
        ctx = torch.matmul(self.drop(weights), v).transpose(1, 2)
        ctx = ctx.reshape(a.shape[0], a.shape[1], self.dim)
        any_valid = (valid.to(a.dtype).sum(dim=1) > 0).to(a.dtype)[:, None, None]
        h = a + self.drop(self.out_proj(ctx)) * any_valid
        out = h + self.drop(self.ff(self.norm_ff(h)))
        return out, weights.mean(dim=1)


class GatedMultimodalUnit(nn.Module):
    """GMU over M modalities: ``fused = sum_m z_m tanh(W_m x_m)``, ``z = softmax(W_z [x])``.

    Arevalo et al.'s two-modality sigmoid gate generalised with a softmax over modalities
    (one scalar gate per modality, so the gates are interpretable as trust in each stream).
    A masked (missing) modality gets gate 0 before renormalisation, and its input is zeroed
    before the gate network, so it influences nothing; all modalities masked -> zeros.
    """

    def __init__(self, dims: Sequence[int], out_dim: int) -> None:
        super().__init__()
        if len(dims) < 1:
            raise ValueError("need at least one modality")
        self.dims = list(dims)
        self.hidden = nn.ModuleList(nn.Linear(d, out_dim) for d in self.dims)
        self.gate = nn.Linear(sum(self.dims), len(self.dims))

    def forward(self, xs: Sequence[torch.Tensor], mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``xs``: M tensors ``[B, d_m]``; ``mask`` ``[B, M]``. Return ``(fused, gates [B, M])``."""
        if len(xs) != len(self.dims):
            raise ValueError(f"expected {len(self.dims)} modalities, got {len(xs)}")
        stacked_like = xs[0].unsqueeze(1).expand(-1, len(self.dims), -1)
        valid = _valid(mask, stacked_like)  # [B, M]
        xs = [torch.where(valid[:, m:m + 1], x, torch.zeros_like(x)) for m, x in enumerate(xs)]
        h = torch.stack([torch.tanh(lin(x)) for lin, x in zip(self.hidden, xs)], dim=1)
        gates = masked_softmax(self.gate(torch.cat(xs, dim=-1)), valid)
        fused = torch.matmul(gates.unsqueeze(1), h).squeeze(1)
        return fused, gates


class CausalContextGraph(nn.Module):
    """RT-GCN over the current window and its last K windows, past edges only.

    The current node i aggregates (CORECT eq. for g_i, future window F = 0)::

        g_i = W_o x_i + b + (1 / |N(i)|) * sum_{j in N(i)} W_{r(i-j)} x_j

    where N(i) is the valid past windows and r maps the temporal distance 1..K to one of
    ``relations`` buckets (default K: one weight per distance; fewer buckets share weights
    between evenly spaced distance ranges). The mean is over *all* valid neighbours, so
    the output scale does not depend on how much history is available. No valid context
    -> ``g_i = W_o x_i + b``.

    ``zero_init=True`` sets neighbour weights to 0 and the self-loop to ``W_o = I, b = 0``:
    the layer is then exactly the identity. The caller keeps the state: ``forward`` also
    returns the context (and its mask) for the next call, oldest dropped, current appended.
    """

    def __init__(self, dim: int, k_past: int, relations: int | None = None,
                 zero_init: bool = False) -> None:
        super().__init__()
        if k_past < 1:
            raise ValueError("k_past must be >= 1")
        relations = k_past if relations is None else relations
        if not 1 <= relations <= k_past:
            raise ValueError(f"relations must be in [1, k_past={k_past}], got {relations}")
        self.dim = dim
        self.k_past = k_past
        self.relations = relations
        self.self_loop = nn.Linear(dim, dim)
        self.rel_weight = nn.Parameter(torch.empty(relations, dim, dim))  # [R, out, in]
        # context index k (0 = oldest) has distance K - k; bucket evenly over 1..K.
        distance = torch.arange(k_past, 0, -1)
        self.register_buffer("bucket", (distance - 1) * relations // k_past, persistent=False)
        if zero_init:
            nn.init.zeros_(self.rel_weight)
            with torch.no_grad():
                self.self_loop.weight.copy_(torch.eye(dim))
                self.self_loop.bias.zero_()
        else:
            bound = 1.0 / math.sqrt(dim)
            nn.init.uniform_(self.rel_weight, -bound, bound)

    def forward(self, current: torch.Tensor, context: torch.Tensor,
                context_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``current [B, D]``, ``context [B, K, D]`` (most recent last), ``context_mask [B, K]``.

        Return ``(out [B, D], next_context [B, K, D], next_mask [B, K])``; masked context
        rows are zeroed in ``next_context`` too.
        """
        if current.dim() != 2 or context.dim() != 3:
            raise ValueError("current must be [batch, dim] and context [batch, K, dim]")
        if not torch.jit.is_tracing() and context.shape[1] != self.k_past:
            raise ValueError(f"context has {context.shape[1]} windows, expected {self.k_past}")
        valid = _valid(context_mask, context)  # [B, K]
        context = _zero_masked(context, valid)
        weight = self.rel_weight[self.bucket]  # [K, out, in]
        msgs = torch.einsum("bki,koi->bko", context, weight)
        vf = valid.to(current.dtype)
        count = torch.clamp(vf.sum(dim=1, keepdim=True), min=1.0)
        agg = (msgs * vf.unsqueeze(-1)).sum(dim=1) / count
        out = self.self_loop(current) + agg
        next_context = torch.cat([context[:, 1:], current.unsqueeze(1)], dim=1)
        next_mask = torch.cat([valid[:, 1:], torch.ones_like(valid[:, :1])], dim=1)
        return out, next_context, next_mask
