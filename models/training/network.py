"""The fusion network: one window of every modality, plus the last K windows, to the scores.

Per sequence modality (visual, audio, text; ``STEPS`` steps a window)::

    x_m  = Linear(features_m)                                  projection
    x_m += Linear0(GAAM(x_m))                                  Gaussian adaptive attention
    audio<->visual, then text<-[audio; visual], visual<-text, audio<-text
                                                               cross-modal attention (P-CM)
    v_m  = AttentionPooling(LayerNorm(x_m))                    one vector per modality

(the LayerNorm after the cross-modal stack, as in MulT, keeps the GMU's tanh out of
saturation once training grows the residual branches)

Physiology (a window vector: rPPG needs 10 s or more) is projected. Then::

    f    = GMU(v_visual, v_audio, v_text, v_physio)            gated fusion, masked
    g    = CausalContextGraph(f, context of the last K windows) past edges only
    heads:   emotion   = softmax(s * log(expert emotion) + Linear0(g))
             valence   = clamp(expert valence + Linear0(g), -1, 1)
             arousal   = clamp(expert arousal + Linear0(g), -1, 1)
             stress    = 100 * sigmoid(slope * (sum_i a_i z_i + Linear0(g)))
                         a = masked softmax(log w + Linear0(g))

``Linear0`` layers, the cross-modal layers' output projections and the context graph's
neighbour weights start at zero, the GMU gate and the pooling scores at zero (equal trust,
uniform steps) and ``s`` at 1, so that with ``expert=True`` the network computes exactly the
documented expert fusion (spec.py, models/stress/index.py); training moves away from it. Every
input has a mask and a masked value reaches no output (tests/unit/test_fusion_network.py).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from wellmon.models.fusion import spec
from wellmon.models.training.gaam import MultiHeadGaussianAdaptiveAttention
from wellmon.models.training.layers import (
    AttentionPooling,
    CausalContextGraph,
    CrossModalAttention,
    GatedMultimodalUnit,
    masked_softmax,
)

TINY = 1e-12


def _zero(layer: nn.Linear) -> nn.Linear:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class ModalityEncoder(nn.Module):
    """Projection and GAAM over the steps of one modality; GAAM enters as a residual."""

    def __init__(self, features: int, dim: int, gaussians: int) -> None:
        super().__init__()
        self.proj = nn.Linear(features, dim)
        self.gaam = MultiHeadGaussianAdaptiveAttention(1, gaussians, norm_axis=1)
        with torch.no_grad():
            self.gaam.scales.fill_(1.0)
        self.gaam_out = _zero(nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(encoded [B, T, D], GAAM weight per step [B, T])``."""
        h = self.proj(torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x)))
        attended, weights = self.gaam(h, mask)
        return h + self.gaam_out(attended), weights.mean(dim=-1)


class WindowInputs:
    """One window's inputs with every masked value zeroed (so that none can leak), its
    sequence masks as booleans and which modalities are present."""

    def __init__(self, visual: torch.Tensor, visual_mask: torch.Tensor, audio: torch.Tensor,
                 audio_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                 physio: torch.Tensor, physio_mask: torch.Tensor) -> None:
        self.masks = {"visual": visual_mask.to(torch.bool), "audio": audio_mask.to(torch.bool),
                      "text": text_mask.to(torch.bool)}
        self.seqs = {m: torch.where(self.masks[m].unsqueeze(-1), x, torch.zeros_like(x))
                     for m, x in (("visual", visual), ("audio", audio), ("text", text))}
        self.physio_ok = physio_mask.to(torch.bool)
        self.physio = torch.where(self.physio_ok.unsqueeze(-1), physio,
                                  torch.zeros_like(physio))
        self.present = torch.stack([self.masks[m].any(dim=1)
                                    for m in spec.SEQUENCE_MODALITIES] + [self.physio_ok],
                                   dim=1)


class Fused(NamedTuple):
    """What an architecture makes of a window: the fused vector and its diagnostics."""

    g: torch.Tensor  # [B, dim]
    gates: torch.Tensor  # [B, modalities]: trust in each modality
    step_attention: torch.Tensor  # [B, 3, T]
    gaam_weights: torch.Tensor  # [B, 3, T]
    next_context: torch.Tensor  # [B, K, dim]
    next_context_mask: torch.Tensor  # [B, K]


class ExpertHeads(nn.Module):
    """What every fusion architecture shares (models/training/architectures.py): the one
    forward of the contract (inputs masked into `WindowInputs`, the architecture's `fuse`,
    the heads), the documented expert fusion as the prior, and heads that correct it from
    the fused window vector ``g`` ([B, dim]). The correcting layers start at zero, so every
    architecture starts out computing the expert fusion exactly; training moves it away."""

    dim: int
    k_past: int
    arch = "gaam-corect"
    alone: tuple[tuple[str, ...], ...] = ()
    """Score-level fusion: the modality sets whose classifiers are trained each on its own
    inputs (train.py), instead of the whole network on every input."""

    @property
    def context_before(self) -> int:
        """How many context slots hold earlier windows; the others hold later ones (a model
        with any is not causal: `FusionModel.run_recording` runs it over whole recordings,
        and the live node refuses it)."""
        return self.k_past

    @property
    def causal(self) -> bool:
        return self.context_before == self.k_past

    def weigh(self, accuracy: dict[tuple[str, ...], float]) -> None:
        """Set what depends on the validation accuracy of each `alone` entry (late fusion's
        modality weights); nothing for the other architectures."""

    def forward(self, visual: torch.Tensor, visual_mask: torch.Tensor, audio: torch.Tensor,
                audio_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                physio: torch.Tensor, physio_mask: torch.Tensor, stress_z: torch.Tensor,
                stress_mask: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor,
                log_emotion: bool = False) -> tuple[torch.Tensor, ...]:
        """Outputs in ``spec.OUTPUT_NAMES`` order; ``log_emotion`` gives log-probabilities
        as the first output instead (training: the expert prior can put a class below float
        precision, where the probability's logarithm has no gradient)."""
        window = WindowInputs(visual, visual_mask, audio, audio_mask, text, text_mask,
                              physio, physio_mask)
        f = self.fuse(window, context, context_mask)
        return (*self._heads(f.g, visual, window.masks["visual"], text, window.masks["text"],
                             stress_z, stress_mask, log_emotion),
                f.gates, f.step_attention, f.gaam_weights, f.next_context, f.next_context_mask)

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        """The architecture's own part: a window (and the context) to ``g``."""
        raise NotImplementedError

    def _init_heads(self, dim: int) -> None:
        n_emotions = len(spec.EMOTIONS)
        self.emotion = _zero(nn.Linear(dim, n_emotions))
        self.emotion_prior_scale = nn.Parameter(torch.ones(()))
        self.valence = _zero(nn.Linear(dim, 1))
        self.arousal = _zero(nn.Linear(dim, 1))
        self.stress_attention = _zero(nn.Linear(dim, len(spec.STRESS_INPUTS)))
        self.stress_shift = _zero(nn.Linear(dim, 1))
        self.register_buffer("stress_log_weights",
                             torch.log(torch.tensor(spec.STRESS_LOG_WEIGHTS)))
        self.register_buffer("valence_of", torch.tensor(
            [spec.EMOTION_VALENCE[e] for e in spec.EMOTIONS]))
        self.register_buffer("arousal_of", torch.tensor(
            [spec.EMOTION_AROUSAL[e] for e in spec.EMOTIONS]))

    def _heads(self, g: torch.Tensor, visual: torch.Tensor, visual_mask: torch.Tensor,
               text: torch.Tensor, text_mask: torch.Tensor, stress_z: torch.Tensor,
               stress_mask: torch.Tensor, log_emotion: bool
               ) -> tuple[torch.Tensor, ...]:
        """Emotion, valence, arousal, stress and the stress contributions from ``g``."""
        emotion, valence, arousal = self._affect(g, visual, visual_mask.to(torch.bool), text,
                                                 text_mask.to(torch.bool), log_emotion)
        stress, contributions = self._stress(g, stress_z, stress_mask.to(torch.bool))
        return emotion, valence, arousal, stress, contributions

    def _affect(self, g: torch.Tensor, visual: torch.Tensor, visual_mask: torch.Tensor,
                text: torch.Tensor, text_mask: torch.Tensor, log_emotion: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Emotion, valence and arousal: the expert prior plus the learned correction."""
        n = len(spec.EMOTIONS)
        face_weight = visual[..., spec.VISUAL_FEATURES.index("face_weight")]
        face_weight = torch.where(visual_mask, face_weight, torch.zeros_like(face_weight))
        probs = torch.where(visual_mask.unsqueeze(-1), visual[..., :n],
                            torch.zeros_like(visual[..., :n]))
        total = face_weight.sum(dim=1, keepdim=True)
        has_face = total > 0
        prior = torch.matmul(face_weight.unsqueeze(1), probs).squeeze(1)
        prior = torch.where(has_face, prior / torch.clamp(total, min=TINY),
                            torch.full_like(prior, 1.0 / n))
        logits = self.emotion_prior_scale * torch.log(torch.clamp(prior, min=TINY))
        logits = logits + self.emotion(g)
        emotion = (torch.log_softmax(logits, dim=-1) if log_emotion
                   else torch.softmax(logits, dim=-1))

        text_ok = text_mask.to(visual.dtype)
        sentiment = text[..., spec.TEXT_FEATURES.index("sentiment")]
        sentiment = torch.where(text_mask, sentiment, torch.zeros_like(sentiment))
        n_text = text_ok.sum(dim=1)
        mean_sentiment = sentiment.sum(dim=1) / torch.clamp(n_text, min=1.0)
        w_face = spec.FACE_VALENCE_WEIGHT * has_face.squeeze(1).to(visual.dtype)
        w_text = spec.TEXT_VALENCE_WEIGHT * (n_text > 0).to(visual.dtype)
        face_valence = torch.matmul(prior, self.valence_of) * w_face
        valence = (face_valence + w_text * mean_sentiment) / torch.clamp(w_face + w_text,
                                                                          min=TINY)
        arousal = torch.matmul(prior, self.arousal_of) * has_face.squeeze(1).to(visual.dtype)
        valence = torch.clamp(valence + self.valence(g).squeeze(-1), -1.0, 1.0)
        arousal = torch.clamp(arousal + self.arousal(g).squeeze(-1), -1.0, 1.0)
        return emotion, valence, arousal

    def _stress(self, g: torch.Tensor, z: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """0-100 and each input's share of the combined z (models/stress/index.py at the start)."""
        z = torch.where(mask, z, torch.zeros_like(z))
        share = masked_softmax(self.stress_log_weights + self.stress_attention(g), mask)
        contributions = share * z
        combined = contributions.sum(dim=-1) + self.stress_shift(g).squeeze(-1)
        return 100.0 * torch.sigmoid(spec.STRESS_SLOPE * combined), contributions


class FusionNetwork(ExpertHeads):
    """See the module docstring; inputs and outputs are named in spec.py."""

    def __init__(self, dim: int = spec.DIM, k_past: int = spec.CONTEXT_WINDOWS,
                 heads: int = 4, gaussians: int = 2) -> None:
        super().__init__()
        self.dim = dim
        self.k_past = k_past
        self.encoders = nn.ModuleDict({
            m: ModalityEncoder(len(spec.FEATURES[m]), dim, gaussians)
            for m in spec.SEQUENCE_MODALITIES})
        self.physio = nn.Linear(len(spec.PHYSIO_FEATURES), dim)
        cross = {name: CrossModalAttention(dim, heads, zero_init=True)
                 for name in ("visual_from_audio", "audio_from_visual", "text_from_both",
                              "visual_from_text", "audio_from_text")}
        self.cross = nn.ModuleDict(cross)
        self.norm = nn.ModuleDict({m: nn.LayerNorm(dim) for m in spec.SEQUENCE_MODALITIES})
        self.pool = nn.ModuleDict({m: AttentionPooling(dim) for m in spec.SEQUENCE_MODALITIES})
        for pool in self.pool.values():
            nn.init.zeros_(pool.score.weight)
        self.gmu = GatedMultimodalUnit([dim] * len(spec.MODALITIES), dim)
        _zero(self.gmu.gate)
        self.context = CausalContextGraph(dim, k_past, zero_init=True)
        self._init_heads(dim)

    def fuse(self, x: WindowInputs, context: torch.Tensor, context_mask: torch.Tensor
             ) -> Fused:
        """GAAM per modality, the cross-modal stack, pooling, the GMU and the context graph
        (module doc)."""
        masks, seqs, gaam = x.masks, {}, {}
        for m in spec.SEQUENCE_MODALITIES:
            seqs[m], gaam[m] = self.encoders[m](x.seqs[m], masks[m])
        v, a, t = seqs["visual"], seqs["audio"], seqs["text"]
        v, _ = self.cross["visual_from_audio"](v, a, masks["audio"])
        a, _ = self.cross["audio_from_visual"](a, seqs["visual"], masks["visual"])
        t, _ = self.cross["text_from_both"](t, torch.cat([a, v], dim=1),
                                           torch.cat([masks["audio"], masks["visual"]], dim=1))
        v, _ = self.cross["visual_from_text"](v, seqs["text"], masks["text"])
        a, _ = self.cross["audio_from_text"](a, seqs["text"], masks["text"])
        pooled, attention = [], []
        for m, h in (("visual", v), ("audio", a), ("text", t)):
            p, w = self.pool[m](self.norm[m](h), masks[m])
            pooled.append(p)
            attention.append(w)
        pooled.append(self.physio(x.physio))
        fused, gates = self.gmu(pooled, x.present)
        g, next_context, next_mask = self.context(fused, context, context_mask)
        return Fused(g, gates, torch.stack(attention, dim=1),
                     torch.stack([gaam[m] for m in spec.SEQUENCE_MODALITIES], dim=1),
                     next_context, next_mask)


def example_inputs(batch: int = 2, steps: int = spec.STEPS, k_past: int = spec.CONTEXT_WINDOWS,
                   dim: int = spec.DIM, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs in ``spec.INPUT_NAMES`` order (tests, export tracing, benchmarks)."""
    gen = torch.Generator().manual_seed(seed)

    def seq(m: str) -> torch.Tensor:
        return torch.randn(batch, steps, len(spec.FEATURES[m]), generator=gen)

    def mask(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen) > 0.3

    visual = seq("visual")
    n = len(spec.EMOTIONS)
    visual[..., :n] = torch.softmax(visual[..., :n], dim=-1)
    visual[..., spec.VISUAL_FEATURES.index("face_weight")] = torch.rand(batch, steps,
                                                                         generator=gen)
    return (visual, mask(batch, steps), seq("audio"), mask(batch, steps), seq("text"),
            mask(batch, steps), torch.randn(batch, len(spec.PHYSIO_FEATURES), generator=gen),
            mask(batch), torch.clamp(torch.randn(batch, len(spec.STRESS_INPUTS), generator=gen),
                                     -3, 3),
            mask(batch, len(spec.STRESS_INPUTS)), torch.randn(batch, k_past, dim, generator=gen),
            mask(batch, k_past))
