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

All four are causal across windows (a window's output depends on it and earlier ones), so
all may be served live; within a window every architecture reads all of its steps.
"""

from __future__ import annotations

import torch
from torch import nn

from wellmon.models.fusion import spec
from wellmon.models.training.layers import AttentionPooling, GatedMultimodalUnit
from wellmon.models.training.network import ExpertHeads, Fused, FusionNetwork, WindowInputs


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


ARCHITECTURES: dict[str, type[ExpertHeads]] = {
    "gaam-corect": FusionNetwork, "mmmla": MMMLANetwork, "mm-b": MMBNetwork,
    "sc-lstm": SCLSTMNetwork}
"""``--arch`` name -> network class; the first is the default."""
DEFAULT_ARCH = "gaam-corect"


def make_network(arch: str, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS
                 ) -> ExpertHeads:
    """A fresh network of the architecture ``arch`` (ValueError naming the choices)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of "
                         + ", ".join(ARCHITECTURES))
    return ARCHITECTURES[arch](dim=dim, k_past=k_past)
