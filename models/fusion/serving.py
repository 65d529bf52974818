"""The fusion model at run time: onnxruntime, one call for every stream's due windows.

The exported graph is stateless; each stream owns its temporal context (the fused vectors
of its last K windows, a `FusionContext`), which `FusionModel.run` passes in and moves on,
so windows of different streams share one batched call. A file that cannot be loaded or
was exported for other features is a ``ModelError`` that names the file and the mismatch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from wellmon.config import PerceptionConfig
from wellmon.models import WEIGHTS
from wellmon.models.fusion import spec
from wellmon.models.fusion.features import FusionInput, empty_context, stack
from wellmon.models.perception.runtime import (
    ModelError,
    choose_providers,
    load_session,
    provider_of,
)

DEFAULT_FILE = WEIGHTS / "fusion_default.onnx"


@dataclass(frozen=True)
class FusionOutput:
    """One window's fused scores and what moved them (arrays are per step)."""

    emotions: dict[str, float]
    valence: float
    arousal: float
    stress: float
    stress_contributions: dict[str, float]
    modality_gates: dict[str, float]
    step_attention: dict[str, np.ndarray]
    gaam_weights: dict[str, np.ndarray]


def _expected_shapes(dim: int, k_past: int) -> dict[str, tuple[int | None, ...]]:
    """Fixed trailing sizes per input (None: dynamic)."""
    return {
        "visual": (None, None, len(spec.VISUAL_FEATURES)),
        "audio": (None, None, len(spec.AUDIO_FEATURES)),
        "text": (None, None, len(spec.TEXT_FEATURES)),
        "physio": (None, len(spec.PHYSIO_FEATURES)),
        "stress_z": (None, len(spec.STRESS_INPUTS)),
        "stress_mask": (None, len(spec.STRESS_INPUTS)),
        "context": (None, k_past, dim),
        "context_mask": (None, k_past),
    }


@dataclass
class FusionContext:
    """One stream's temporal context: the fused vectors of its last windows, and which of
    them exist. Owned by the stream; `FusionModel.run` moves it on."""

    context: np.ndarray
    mask: np.ndarray


class FusionModel:
    """Loads a fusion ONNX file, checks it against spec.py and runs batches of windows."""

    def __init__(self, path: str | Path | None = None, providers: list[str] | None = None,
                 threads: int = 0) -> None:
        self.path = Path(path).expanduser() if path else DEFAULT_FILE
        self.session = load_session(self.path, spec.INPUT_RANKS,
                                    providers=providers or ["CPUExecutionProvider"],
                                    threads=threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.kind = meta.get("wellmon.kind")
        if self.kind is None:
            raise ModelError(f"model {self.path} is not a wellmon fusion model "
                             "(no wellmon.kind metadata)")
        self.arch = meta.get("wellmon.arch", "gaam-corect")  # files from before it was named
        self.dim = int(meta.get("wellmon.dim", spec.DIM))
        self.k_past = int(meta.get("wellmon.context_windows", spec.CONTEXT_WINDOWS))
        self._check(meta)

    def _check(self, meta: dict[str, str]) -> None:
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs != list(spec.OUTPUT_NAMES):
            raise ModelError(f"model {self.path} has outputs {outputs}, "
                             f"expected {list(spec.OUTPUT_NAMES)}")
        for name, want in _expected_shapes(self.dim, self.k_past).items():
            got = next(i.shape for i in self.session.get_inputs() if i.name == name)
            for axis, (g, w) in enumerate(zip(got, want)):
                if w is not None and g != w:
                    raise ModelError(f"model {self.path}: input {name} axis {axis} is {g}, "
                                     f"this version of wellmon builds {w}")
        for key, names in (("wellmon.emotions", spec.EMOTIONS),
                           ("wellmon.stress_inputs", spec.STRESS_INPUTS)):
            if key in meta and meta[key] != _json_list(names):
                raise ModelError(f"model {self.path}: {key} is {meta[key]}, "
                                 f"expected {_json_list(names)}")

    @property
    def expert(self) -> bool:
        """The shipped defaults: outputs are the documented expert fusion, nothing learned."""
        return self.kind == spec.EXPERT_DEFAULTS

    @property
    def provider(self) -> str:
        return provider_of(self.session)

    def describe(self) -> str:
        what = "expert defaults" if self.expert else self.kind
        return f"fusion {self.path.name} ({self.arch}, {what}) on {self.provider}"

    def new_context(self) -> FusionContext:
        """A stream's context before its first window (no past windows)."""
        context, mask = empty_context(self.dim, self.k_past)
        return FusionContext(context, mask)

    def run(self, windows: Sequence[tuple[FusionContext, FusionInput]]) -> list[FusionOutput]:
        """Fuse windows (the stream's context, input) in one call; each stream's windows in
        time order. Each context moves on past its windows."""
        if not windows:
            return []
        results: list[FusionOutput | None] = [None] * len(windows)
        # A stream with two due windows needs the first one's context for the second, so
        # each round takes at most one window per stream, in order.
        pending = list(range(len(windows)))
        while pending:
            this_round: list[int] = []
            streams: set[int] = set()
            for i in pending:
                if id(windows[i][0]) not in streams:
                    streams.add(id(windows[i][0]))
                    this_round.append(i)
            pending = [i for i in pending if i not in this_round]
            self._run_round([(i, *windows[i]) for i in this_round], results)
        return [r for r in results if r is not None]

    def _run_round(self, batch: list[tuple[int, FusionContext, FusionInput]],
                   results: list[FusionOutput | None]) -> None:
        feeds = stack([x for _, _, x in batch], [(c.context, c.mask) for _, c, _ in batch])
        try:
            out = dict(zip(spec.OUTPUT_NAMES, self.session.run(None, feeds)))
        except (ort.capi.onnxruntime_pybind11_state.Fail,
                ort.capi.onnxruntime_pybind11_state.InvalidArgument) as exc:
            raise ModelError(f"model {self.path} failed on a batch: {exc}") from None
        for row, (index, context, _) in enumerate(batch):
            context.context = out["next_context"][row]
            context.mask = out["next_context_mask"][row]
            results[index] = FusionOutput(
                emotions={e: float(p) for e, p in zip(spec.EMOTIONS, out["emotion"][row])},
                valence=float(out["valence"][row]),
                arousal=float(out["arousal"][row]),
                stress=float(out["stress"][row]),
                stress_contributions={name: float(c) for name, c in zip(
                    spec.STRESS_INPUTS, out["stress_contributions"][row])},
                modality_gates={m: float(g) for m, g in zip(spec.MODALITIES,
                                                           out["modality_gates"][row])},
                step_attention={m: out["step_attention"][row, i]
                                for i, m in enumerate(spec.SEQUENCE_MODALITIES)},
                gaam_weights={m: out["gaam_weights"][row, i]
                              for i, m in enumerate(spec.SEQUENCE_MODALITIES)},
            )


def load_fusion(cfg: PerceptionConfig) -> FusionModel:
    """The configured fusion model (``perception.fusion_model``) on the configured providers."""
    return FusionModel(cfg.fusion_model, choose_providers(cfg.providers), cfg.threads)


def _json_list(names: Sequence[str]) -> str:
    return json.dumps(list(names))
