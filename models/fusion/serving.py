"""The fusion model at run time: onnxruntime, one call for every stream's due windows.

The exported graph is stateless; each stream owns its temporal context (the fused vectors
of its last K windows, a `FusionContext`), which `FusionModel.run` passes in and moves on,
so windows of different streams share one batched call. A file that cannot be loaded or
was exported for other features is a ``ModelError`` that names the file and the mismatch.

A model whose context also holds windows *after* the current one (``wellmon.context_before``
below ``wellmon.context_windows``: bc-lstm) is not causal: it cannot be served live, and
`FusionModel.run_recording` runs it over a whole recording instead.
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
        self.context_before = int(meta.get("wellmon.context_before", self.k_past))
        """How many context slots hold earlier windows; the rest hold later ones."""
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
    def causal(self) -> bool:
        """Its outputs depend on the window and earlier ones only: it may be served live."""
        return self.context_before == self.k_past

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

    def run_recording(self, inputs: Sequence[FusionInput]) -> list[FusionOutput]:
        """One stream's windows of a whole recording, in time order (replay, training).

        A causal model runs them one after another, its context carried. A non-causal one
        runs in two batched passes: each window alone, which gives its own vector (the last
        slot of its ``next_context``), then each window with the vectors of the
        ``context_before`` windows before it and of those after it in its context."""
        if self.causal:
            context = self.new_context()
            return self.run([(context, x) for x in inputs])
        alone = [self.new_context() for _ in inputs]
        self._run_batches(list(zip(alone, inputs)))
        own = [c.context[-1] for c in alone]
        offsets = neighbour_offsets(self.k_past, self.context_before)
        around = []
        for t in range(len(inputs)):
            context = self.new_context()
            for slot, offset in enumerate(offsets):
                other = t + offset
                if 0 <= other < len(inputs):
                    context.context[slot], context.mask[slot] = own[other], True
            around.append(context)
        return self._run_batches(list(zip(around, inputs)))

    def _run_batches(self, windows: list[tuple[FusionContext, FusionInput]]
                     ) -> list[FusionOutput]:
        """`run` over windows of distinct contexts, RECORDING_BATCH at a time."""
        return [out for k in range(0, len(windows), RECORDING_BATCH)
                for out in self.run(windows[k:k + RECORDING_BATCH])]

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


def neighbour_offsets(k_past: int, context_before: int) -> list[int]:
    """The window each context slot of a model that is not causal holds, relative to the
    current one: the `context_before` windows before it (oldest first), then the ones after
    it (nearest first). Replay here and training (train.py) build contexts from it alike."""
    return [*range(-context_before, 0), *range(1, k_past - context_before + 1)]


RECORDING_BATCH = 256
"""Windows per onnxruntime call when a recording is fused in one go."""


def load_fusion(cfg: PerceptionConfig, live: bool = False) -> FusionModel:
    """The configured fusion model (``perception.fusion_model``) on the configured providers;
    ``live``: a model that is not causal is refused by name."""
    model = FusionModel(cfg.fusion_model, choose_providers(cfg.providers), cfg.threads)
    if live and not model.causal:
        raise ModelError(f"perception.fusion_model {model.path}: a {model.arch} model reads "
                         "the windows after each one, so it cannot be served live; use it "
                         "with `wellmon replay`, or train a causal architecture for the node")
    return model


def _json_list(names: Sequence[str]) -> str:
    return json.dumps(list(names))
