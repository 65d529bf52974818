"""ONNX export of the fusion network, and the shipped expert-default weights.

The exported graph is stateless: the temporal context goes in and out as tensors
(``context``/``next_context``), so the node keeps one context per stream and batches
windows of different streams into one call. Batch and steps are dynamic axes.

Metadata in the file says what it is: ``wellmon.kind`` is ``expert`` for the shipped
defaults (the documented expert fusion, nothing learned) and ``trained`` for a file written
by ``wellmon train``, with the card's path and the training data named.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from wellmon.models.fusion import spec
from wellmon.models.fusion.serving import DEFAULT_FILE
from wellmon.models.training.architectures import ARCHITECTURES, DEFAULT_ARCH, make_network
from wellmon.models.training.network import ExpertHeads, FusionNetwork, example_inputs

OPSET = 17
CHECKPOINT_VERSION = 1


def _dynamic_axes() -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in spec.INPUT_NAMES}
    for m in spec.SEQUENCE_MODALITIES:
        axes[m][1] = "steps"
        axes[f"{m}_mask"][1] = "steps"
    for name in spec.OUTPUT_NAMES:
        axes[name] = {0: "batch"}
    axes["step_attention"][2] = axes["gaam_weights"][2] = "steps"
    return axes


def export_onnx(net: ExpertHeads, path: Path, kind: str,
                metadata: dict[str, str] | None = None) -> Path:
    """Write ``net`` as ONNX to ``path`` (parent folders made) and return the path."""
    import onnx

    net = net.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape asserts skipped on trace
        torch.onnx.export(net, example_inputs(2, k_past=net.k_past, dim=net.dim), buffer,
                          input_names=list(spec.INPUT_NAMES),
                          output_names=list(spec.OUTPUT_NAMES),
                          dynamic_axes=_dynamic_axes(), opset_version=OPSET, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    info = {"wellmon.kind": kind, "wellmon.steps": str(spec.STEPS),
            "wellmon.dim": str(net.dim), "wellmon.context_windows": str(net.k_past),
            "wellmon.context_before": str(net.context_before), "wellmon.arch": net.arch,
            "wellmon.emotions": json.dumps(list(spec.EMOTIONS)),
            "wellmon.stress_inputs": json.dumps(list(spec.STRESS_INPUTS)),
            **(metadata or {})}
    for key, value in info.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def expert_network(seed: int = 0) -> FusionNetwork:
    """The network at its documented start: it computes the expert fusion exactly.

    The seed fixes the projections' random start, which does not change any output until
    training moves the zero-initialised layers, but makes the shipped file reproducible."""
    torch.manual_seed(seed)
    return FusionNetwork()


def save_checkpoint(net: ExpertHeads, path: Path, extra: dict[str, Any] | None = None) -> None:
    """A checkpoint that ``wellmon export`` can turn into ONNX again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"version": CHECKPOINT_VERSION, "arch": net.arch, "dim": net.dim,
                "k_past": net.k_past,
                "state_dict": net.state_dict(), "extra": extra or {}}, path)


def load_checkpoint(path: Path, arch: str | None = None) -> tuple[ExpertHeads, dict[str, Any]]:
    """The network and the extra information saved with it; clear errors for bad files and
    for a checkpoint of another architecture than ``arch`` (when given). A checkpoint from
    before architectures were named is a gaam-corect one."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise ValueError(f"{path} is not a wellmon fusion checkpoint: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a wellmon fusion checkpoint (version "
                         f"{data.get('version') if isinstance(data, dict) else None!r}, "
                         f"expected {CHECKPOINT_VERSION})")
    saved = data.get("arch", DEFAULT_ARCH)
    if saved not in ARCHITECTURES:
        raise ValueError(f"{path} is a checkpoint of an unknown architecture {saved!r} "
                         f"(expected one of {', '.join(ARCHITECTURES)})")
    if arch is not None and arch != saved:
        raise ValueError(f"{path} is a {saved} checkpoint, not {arch}: export it with "
                         f"--arch {saved} (or without --arch)")
    net = make_network(saved, dim=int(data["dim"]), k_past=int(data["k_past"]))
    try:
        net.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path} does not fit the {saved} network: {exc}") from None
    return net, dict(data.get("extra") or {})


def build_default(path: Path = DEFAULT_FILE) -> Path:
    """Write the shipped expert-default fusion model (``wellmon models build --fusion``)."""
    return export_onnx(expert_network(), path, spec.EXPERT_DEFAULTS, {
        "wellmon.description": "expert fusion defaults: nothing learned; see "
                               "models/weights/WEIGHTS.md"})
