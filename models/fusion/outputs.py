"""Fusion outputs as the score message gives them: values, nulls with reasons, and drivers.

The shipped expert defaults can only speak where the expert rule has its inputs: emotion
and arousal need a face, valence a face or finished words, stress the quality gate and the
baseline (models/stress/index.py). A trained model may read emotion from any modality it was
trained on, so its emotion, valence and arousal need only something to fuse; its stress
still goes through the gate, which no training data here can replace.

``drivers`` says what moved the window, largest first: the stress inputs with their share of
the combined z, then each present modality with its GMU gate (how much the fused vector
trusted it) and the moment (the step's centre, capture clock) that its attention pooling
and GAAM weighted most. With the expert defaults the gates are equal and the pooling is
uniform, so the moment is where GAAM's data-driven weights peak, nothing learned.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from wellmon.models.fusion import spec
from wellmon.models.fusion.features import FusionInput
from wellmon.models.fusion.serving import FusionOutput
from wellmon.models.stress.index import StressResult, logistic_map

NOTHING = "nothing to fuse in the window (no face, audio, words or pulse)"


def fused_fields(output: FusionOutput | None, inputs: FusionInput, stress: StressResult,
                 expert: bool, reasons: dict[str, str], t_start: float, t_end: float
                 ) -> dict[str, Any]:
    """The window's emotions, valence, arousal, stress, stress band and drivers, or the
    reasons why not (added to a copy of `reasons`, the window's reasons so far): keyword
    arguments of the `ScoreMessage`, which declares their types."""
    present = inputs.present
    face = present["visual"]
    fused: dict[str, Any] = {"reasons": dict(reasons), "stress": None}
    why = fused["reasons"]
    if stress.value is None or output is None:
        why["stress"] = stress.reason or NOTHING
    else:
        fused["stress"] = round(output.stress, 1)
        fused["stress_band"] = band(output.stress, stress.z_se)
    if output is None:
        for key in ("emotions", "valence", "arousal"):
            why.setdefault(key, NOTHING)
        return fused
    if face or not expert:
        fused["emotions"] = {e: round(p, 4) for e, p in output.emotions.items()}
        why.pop("emotions", None)
    if face or present["text"] or not expert:
        fused["valence"] = round(output.valence, 4)
    else:
        why["valence"] = "no face and no finished utterance in the window"
    if face or not expert:
        fused["arousal"] = round(output.arousal, 4)
    else:
        why["arousal"] = "no face in the window"
    fused["drivers"] = drivers(output, inputs, t_start, t_end,
                               stress_used=fused["stress"] is not None)
    return fused


def band(value: float, z_se: float | None) -> list[float] | None:
    """[low, high]: the index at its combined z -+ one standard error (models/stress/index.py),
    around the model's own value so that it brackets what the message shows."""
    if z_se is None or not 0.0 < value < 100.0:
        return None
    z = math.log(value / (100.0 - value)) / spec.STRESS_SLOPE
    return [round(logistic_map(z - z_se), 1), round(logistic_map(z + z_se), 1)]


def drivers(output: FusionOutput, inputs: FusionInput, t_start: float, t_end: float,
            stress_used: bool) -> list[dict[str, Any]]:
    """Stress inputs by |share|, then present modalities by gate (see the module doc)."""
    out: list[dict[str, Any]] = []
    if stress_used:
        used = [(name, c) for name, c, ok in zip(spec.STRESS_INPUTS,
                                                  output.stress_contributions.values(),
                                                  inputs.stress_mask) if ok]
        out += [{"input": name, "contribution": round(c, 3)}
                for name, c in sorted(used, key=lambda nc: -abs(nc[1]))]
    step_s = (t_end - t_start) / max(1, len(inputs.visual_mask))
    modalities = []
    for m in spec.MODALITIES:
        if not inputs.present[m]:
            continue
        entry: dict[str, Any] = {"modality": m, "gate": round(output.modality_gates[m], 3)}
        if m in output.step_attention:
            mask = getattr(inputs, f"{m}_mask")
            weight = output.step_attention[m] * output.gaam_weights[m] * mask
            if weight.sum() > 0:
                weight = weight / weight.sum()
                step = int(np.argmax(weight))
                entry["moment"] = round(t_start + (step + 0.5) * step_s, 3)
                entry["moment_weight"] = round(float(weight[step]), 3)
        modalities.append(entry)
    return out + sorted(modalities, key=lambda e: -e["gate"])
