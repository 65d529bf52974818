"""Loading ONNX models for onnxruntime: provider choice, threads, and clear errors.

The CUDA execution provider is used when a GPU is present and onnxruntime can
actually run on it; otherwise the CPU provider. The choice is checked on the
created session (the onnxruntime-gpu wheel lists CUDA as "available" even on
machines without a GPU, then falls back), and reported by `provider_of()`.
A model file that is missing, unreadable or has other inputs than the code
expects is a `ModelError` naming the file and the mismatch.
"""

from __future__ import annotations

import glob
from pathlib import Path

import onnxruntime as ort

from models.errors import ModelError

WEIGHTS = Path(__file__).parent / "weights"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
__all__ = ["ModelError", "choose_providers", "load_session", "provider_of"]


def gpu_present() -> bool:
    """A CUDA device node exists (cheap; avoids onnxruntime's noisy CUDA probe on CPUs)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def choose_providers(preference: str = "auto") -> list[str]:
    """`auto`: CUDA when a GPU is present and onnxruntime has it, then CPU; `cpu`; `cuda`."""
    available = ort.get_available_providers()
    if preference == "cpu":
        return [CPU]
    if preference == "cuda":
        if CUDA not in available:
            raise ModelError("perception.providers is 'cuda' but this onnxruntime has no CUDA "
                             "execution provider (install onnxruntime-gpu)")
        return [CUDA, CPU]
    return [CUDA, CPU] if CUDA in available and gpu_present() else [CPU]


def load_session(path: Path, inputs: dict[str, int], *, providers: list[str],
                 threads: int = 0) -> ort.InferenceSession:
    """A session for `path` whose inputs are exactly `inputs` (name → rank)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: a node shares two cores with captures and
    # the dashboard, and spinning workers slowed everything on a loaded machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        raise ModelError(f"cannot load model {path}: {exc}") from None
    found = {i.name: len(i.shape) for i in session.get_inputs()}
    if found != inputs:
        raise ModelError(f"model {path} has inputs {found}, expected {inputs}")
    return session


def provider_of(session: ort.InferenceSession) -> str:
    return session.get_providers()[0]
