"""The fusion architectures `wellmon train --arch NAME` fits, all on one contract.

Every architecture reads the same window inputs and writes the same outputs (spec.py's
INPUT_NAMES and OUTPUT_NAMES), so the node serves any exported file through
`perception.fusion_model` with no code change, batched across streams. They differ in how
a window's modalities become the fused vector ``g``; the heads that turn ``g`` into
emotion, valence, arousal and stress are shared (`network.ExpertHeads`: the expert fusion
plus corrections that start at zero). An output an architecture has no counterpart for is
given its neutral value: a uniform attention over the valid steps, gates spread evenly over
the modalities present, and a context that only remembers (the windows' ``g``, shifted).
Every input is masked: a masked step or modality reaches no output
(tests/unit/test_fusion_architectures.py).

* ``gaam-corect`` (seed 000, network.py): projection, GAAM, cross-modal attention,
  attention pooling, a GMU, and the causal RT-GCN context of the last windows.
* ``mmmla`` (seed 001's MMMLA): a BLSTM over each modality's steps, Bahdanau attention
  pooling (``e_i = v^T tanh(W h_i + b)``), a GMU between the modalities.
* ``mm-b`` (seed 001's baseline "MM-B"): each modality's steps averaged, the four
  concatenated with which are present, a two-layer perceptron.
* ``sc-lstm`` (seed 002's contextual LSTM, live form): each window as one vector, a
  unidirectional LSTM over the last windows' vectors and this one.
* ``bc-lstm`` (seed 002's contextual LSTM, offline form): the same window vectors, a
  bidirectional LSTM over the windows before *and after* this one. It reads the future, so
  it is not causal: replay and training run it over a whole recording in two passes
  (`serving.FusionModel.run_recording`), and the live node refuses it by name.
* ``bimha`` (seed 000's BIMHA): pairwise tensor fusion (outer products a x v, a x t,
  v x t), a linear layer with ReLU per pair, a shared layer, bimodal multi-head attention
  across the three pair vectors, the residual ``[A_av, A_at, A_vt] + D`` and a three-layer
  DNN.
* ``late`` (seed 002's score-level fusion): one classifier per modality, trained each on
  its modality alone, their class scores combined with weights set by each one's
  validation accuracy.

All but bc-lstm are causal across windows (a window's output depends on it and earlier
ones), so they may be served live; within a window every architecture reads all of its
steps.
"""

from __future__ import annotations

import torch
from torch import nn

from wellmon.models.fusion import spec
from wellmon.models.training.layers import AttentionPooling, GatedMultimodalUnit
from wellmon.models.training.network import (
    TINY,
    ExpertHeads,
    Fused,
    FusionNetwork,
    WindowInputs,
)


def _valid_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid steps of ``[B, T, F]`` (zeros where none is valid)."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=1) / torch.clamp(weights.sum(dim=1), min=1.0)


def _uniform_steps(x: WindowInputs) -> torch.Tensor:
    """Equal attention over each modality's valid steps ``[B, 3, T]``."""
    weights = torch.stack([x.masks[m] for m in spec.SEQUENCE_MODALITIES], dim=1).to(
        torch.float32)
    return weights / torch.clamp(weights.sum(dim=2, keepdim=True), min=1.0)


SUMMARY_WIDTH = sum(len(spec.FEATURES[m]) for m in spec.SEQUENCE_MODALITIES) \
    + len(spec.PHYSIO_FEATURES) + len(spec.MODALITIES)


def _summary(x: WindowInputs) -> torch.Tensor:
    """A window as one row ``[B, SUMMARY_WIDTH]``: each modality's steps averaged over the
    valid ones, the physiology, and which modalities are present."""
    parts = [_valid_mean(x.seqs[m], x.masks[m]) for m in spec.SEQUENCE_MODALITIES]
    return torch.cat([*parts, x.physio, x.present.to(x.physio.dtype)], dim=1)


def _even_gates(present: torch.Tensor) -> torch.Tensor:
    """Gates ``[B, M]`` spread evenly over the modalities present."""
    weights = present.to(torch.float32)
    return weights / torch.clamp(weights.sum(dim=1, keepdim=True), min=1.0)


def _remember(g: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The context of an architecture that does not read it: the last windows' ``g``
    (masked entries zeroed: a masked value goes nowhere, not even on)."""
    kept = torch.where(context_mask.to(torch.bool).unsqueeze(-1), context,
                       torch.zeros_like(context))
    next_context = torch.cat([kept[:, 1:], g.unsqueeze(1)], dim=1)
    valid = torch.ones_like(context_mask[:, :1], dtype=torch.bool)
    return next_context, torch.cat([context_mask[:, 1:].to(torch.bool), valid], dim=1)


class MMBNetwork(ExpertHeads):
    """MM-B: averaged steps, concatenated, a two-layer perceptron (module doc)."""

    arch = "mm-b"

    def __init__(self, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS) -> None:
        super().__init__()
        self.dim, self.k_past = dim, k_past
        self.mlp = nn.Sequential(nn.Linear(SUMMARY_WIDTH, dim), nn.ReLU(), nn.Linear(dim, dim),
                                 nn.Tanh())
        self._init_heads(dim)

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        g = self.mlp(_summary(x))
        steps = _uniform_steps(x)
        return Fused(g, _even_gates(x.present), steps, steps, *_remember(g, context,
                                                                         context_mask))


class MMMLANetwork(ExpertHeads):
    """MMMLA: a BLSTM per modality, Bahdanau attention pooling, a GMU (module doc)."""

    arch = "mmmla"

    def __init__(self, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS) -> None:
        super().__init__()
        self.dim, self.k_past = dim, k_past
        self.lstm = nn.ModuleDict({
            m: nn.LSTM(len(spec.FEATURES[m]), dim // 2, batch_first=True, bidirectional=True)
            for m in spec.SEQUENCE_MODALITIES})
        self.pool = nn.ModuleDict({m: AttentionPooling(dim) for m in spec.SEQUENCE_MODALITIES})
        self.physio_proj = nn.Linear(len(spec.PHYSIO_FEATURES), dim)
        self.gmu = GatedMultimodalUnit([dim] * len(spec.MODALITIES), dim)
        self._init_heads(dim)

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        pooled, attention = [], []
        for m in spec.SEQUENCE_MODALITIES:
            h, _ = self.lstm[m](x.seqs[m])
            p, w = self.pool[m](h, x.masks[m])
            pooled.append(p)
            attention.append(w)
        pooled.append(self.physio_proj(x.physio))
        g, gates = self.gmu(pooled, x.present)
        steps = torch.stack(attention, dim=1)
        return Fused(g, gates, steps, steps, *_remember(g, context, context_mask))


class SCLSTMNetwork(ExpertHeads):
    """sc-LSTM: each window summarised into one vector (its modalities' averaged steps and
    which are present, through a layer), and a unidirectional LSTM over the last windows'
    vectors and this one (seed 002's contextual LSTM, in its live, causal form). The context
    carries the windows' vectors, so the LSTM reads the past without keeping a state."""

    arch = "sc-lstm"

    def __init__(self, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS) -> None:
        super().__init__()
        self.dim, self.k_past = dim, k_past
        self.window = nn.Sequential(nn.Linear(SUMMARY_WIDTH, dim), nn.Tanh())
        self.lstm = nn.LSTM(dim, dim, batch_first=True)
        self._init_heads(dim)

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        u = self.window(_summary(x))
        past = torch.where(context_mask.to(torch.bool).unsqueeze(-1), context,
                           torch.zeros_like(context))
        h, _ = self.lstm(torch.cat([past, u.unsqueeze(1)], dim=1))
        steps = _uniform_steps(x)
        return Fused(h[:, -1], _even_gates(x.present), steps, steps,
                     *_remember(u, context, context_mask))


class BCLSTMNetwork(ExpertHeads):
    """bc-LSTM: sc-LSTM's window vectors, a bidirectional LSTM over the windows around this
    one (seed 002's offline form). Its context is not the past alone: the first
    `context_before` (half) slots are the windows before this one (oldest first), the
    others the windows after it (nearest first). ``next_context`` holds only this window's
    vector, in its last slot: what `serving.FusionModel.run_recording` collects in a first
    pass to build every window's neighbours for the second."""

    arch = "bc-lstm"

    def __init__(self, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS) -> None:
        super().__init__()
        self.dim, self.k_past = dim, k_past
        self.window = nn.Sequential(nn.Linear(SUMMARY_WIDTH, dim), nn.Tanh())
        self.lstm = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)
        self._init_heads(dim)

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        u = self.window(_summary(x))
        around = torch.where(context_mask.to(torch.bool).unsqueeze(-1), context,
                             torch.zeros_like(context))
        before = self.context_before
        past, future = around[:, :before], around[:, before:]
        h, _ = self.lstm(torch.cat([past, u.unsqueeze(1), future], dim=1))
        steps = _uniform_steps(x)
        own = torch.cat([torch.zeros_like(context[:, 1:]), u.unsqueeze(1)], dim=1)
        own_mask = torch.cat([torch.zeros_like(context_mask[:, 1:], dtype=torch.bool),
                              torch.ones_like(context_mask[:, :1], dtype=torch.bool)], dim=1)
        return Fused(h[:, before], _even_gates(x.present), steps, steps, own, own_mask)

    @property
    def context_before(self) -> int:
        return self.k_past // 2


PAIR_WIDTH = 8
"""Width of each modality's vector before the outer products (BIMHA); with the appended 1,
a pair's tensor has (8 + 1)^2 = 81 entries."""
PAIRS = (("audio", "visual"), ("audio", "text"), ("visual", "text"))


class BIMHANetwork(ExpertHeads):
    """BIMHA (seed 000; Wu et al. 2022): tensor fusion of each pair of modalities, a shared
    layer, bimodal multi-head attention across the pairs, residual, a three-layer DNN.

    Each sequence modality is its valid steps averaged and projected (zero when absent);
    a 1 is appended before the outer product, as in tensor fusion networks, so that a pair
    keeps each modality's own terms when the other is missing instead of collapsing to
    zero. Physiology, which the seed does not have, joins the DNN's input with which
    modalities are present."""

    arch = "bimha"

    def __init__(self, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS,
                 heads: int = 4) -> None:
        super().__init__()
        self.dim, self.k_past = dim, k_past
        self.unimodal = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(len(spec.FEATURES[m]), PAIR_WIDTH), nn.Tanh())
            for m in spec.SEQUENCE_MODALITIES})
        self.pair = nn.ModuleDict({
            f"{a}_{b}": nn.Sequential(nn.Linear((PAIR_WIDTH + 1) ** 2, dim), nn.ReLU())
            for a, b in PAIRS})
        self.shared = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.physio_proj = nn.Linear(len(spec.PHYSIO_FEATURES), PAIR_WIDTH)
        width = len(PAIRS) * dim + PAIR_WIDTH + len(spec.MODALITIES)
        self.dnn = nn.Sequential(nn.Linear(width, dim), nn.ReLU(), nn.Linear(dim, dim),
                                 nn.ReLU(), nn.Linear(dim, dim), nn.Tanh())
        self._init_heads(dim)

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        present = x.present.to(x.physio.dtype)
        one = torch.ones_like(present[:, :1])
        z = {}
        for i, m in enumerate(spec.SEQUENCE_MODALITIES):
            vector = self.unimodal[m](_valid_mean(x.seqs[m], x.masks[m])) * present[:, i:i + 1]
            z[m] = torch.cat([vector, one], dim=1)
        d = torch.stack([self.shared(self.pair[f"{a}_{b}"](
            torch.bmm(z[a].unsqueeze(2), z[b].unsqueeze(1)).flatten(1))) for a, b in PAIRS],
            dim=1)  # [B, pairs, dim]: D
        attended, _ = self.attention(d, d, d, need_weights=False)
        physio = self.physio_proj(x.physio) * present[:, -1:]
        g = self.dnn(torch.cat([(attended + d).flatten(1), physio, present], dim=1))
        steps = _uniform_steps(x)
        return Fused(g, _even_gates(x.present), steps, steps, *_remember(g, context,
                                                                         context_mask))


class LateFusionNetwork(ExpertHeads):
    """Score-level fusion (seed 002's hybrid networks): one classifier per modality, their
    class scores combined, each weighted by its validation performance.

    Modality ``m``'s classifier is a small network on its averaged steps (or the physiology
    vector) to ``g_m``, and its block ``W_m`` of the shared heads' first layer: its class
    scores are ``W_m g_m``. The window's ``g`` is the concatenation of ``w_m g_m`` over the
    modalities, with ``w`` the weights renormalised over those present, so the emotion head
    computes ``sum_m w_m W_m g_m + b``: the weighted sum of the classifiers' scores. Training
    fits every classifier on its modality alone (`alone`: every other input masked, where
    the weights leave it by itself), never on the combination; `weigh` then sets the
    weights from each classifier's validation accuracy. The modality gates report them.
    The expert prior the shared heads add to every architecture's emotion scores (the face's
    expression distribution) stays outside the weighting."""

    arch = "late"
    alone: tuple[tuple[str, ...], ...] = tuple((m,) for m in spec.MODALITIES)

    def __init__(self, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS) -> None:
        super().__init__()
        if dim % len(spec.MODALITIES):
            raise ValueError(f"late fusion needs a width divisible by {len(spec.MODALITIES)}, "
                             f"got {dim}")
        self.dim, self.k_past = dim, k_past
        part = dim // len(spec.MODALITIES)
        widths = {**{m: len(spec.FEATURES[m]) for m in spec.SEQUENCE_MODALITIES},
                  "physio": len(spec.PHYSIO_FEATURES)}
        self.classifier = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(widths[m], part), nn.Tanh(), nn.Linear(part, part),
                             nn.Tanh()) for m in spec.MODALITIES})
        self.register_buffer("modality_weights", torch.ones(len(spec.MODALITIES)))
        self._init_heads(dim)

    def weigh(self, accuracy: dict[tuple[str, ...], float]) -> None:
        """Weights from each classifier's validation accuracy (its `alone` entry); equal
        when none is above zero."""
        values = torch.tensor([max(0.0, accuracy[(m,)]) for m in spec.MODALITIES])
        self.modality_weights.copy_(values if values.sum() > 0 else torch.ones_like(values))

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        inputs = {**{m: _valid_mean(x.seqs[m], x.masks[m]) for m in spec.SEQUENCE_MODALITIES},
                  "physio": x.physio}
        weights = self.modality_weights * x.present.to(x.physio.dtype)
        weights = weights / torch.clamp(weights.sum(dim=1, keepdim=True), min=TINY)
        g = torch.cat([weights[:, i:i + 1] * self.classifier[m](inputs[m])
                       for i, m in enumerate(spec.MODALITIES)], dim=1)
        steps = _uniform_steps(x)
        return Fused(g, weights, steps, steps, *_remember(g, context, context_mask))


ARCHITECTURES: dict[str, type[ExpertHeads]] = {
    "gaam-corect": FusionNetwork, "mmmla": MMMLANetwork, "mm-b": MMBNetwork,
    "sc-lstm": SCLSTMNetwork, "bc-lstm": BCLSTMNetwork, "bimha": BIMHANetwork,
    "late": LateFusionNetwork}
"""``--arch`` name -> network class; the first is the default."""
DEFAULT_ARCH = "gaam-corect"


def make_network(arch: str, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS
                 ) -> ExpertHeads:
    """A fresh network of the architecture ``arch`` (ValueError naming the choices)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of "
                         + ", ".join(ARCHITECTURES))
    return ARCHITECTURES[arch](dim=dim, k_past=k_past)


def arch_names(text: str) -> list[str]:
    """`all` or a comma-separated list of architectures (ValueError naming the choices)."""
    names = list(ARCHITECTURES) if text == "all" else [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in ARCHITECTURES]
    if unknown or not names:
        raise ValueError(f"--arch: unknown {', '.join(unknown) or 'empty'}: expected all or "
                         f"some of {', '.join(ARCHITECTURES)}")
    return names
