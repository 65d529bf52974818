"""Loading ONNX models for onnxruntime: provider choice, threads, and clear errors.

The CUDA execution provider is used when a GPU is present and onnxruntime can
actually run on it; otherwise the CPU provider. The choice is checked on the
created session (the onnxruntime-gpu wheel lists CUDA as "available" even on
machines without a GPU, then falls back), and reported by `provider_of()`.
A model file that is missing, unreadable or has other inputs than the code
expects is a `ModelError` naming the file and the mismatch.

Sessions hand the memory their arena holds for a bigger batch back now and then
(`Session`): a node runs unattended for months, and bursts must not ratchet up
its memory.
"""

from __future__ import annotations

import ctypes
import glob
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort

from wellmon.models.errors import ModelError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
RELEASE_EVERY_S = 10.0
"""How often a session returns its arena's idle memory. A release costs about 2.4 ms of CPU
(the next run faults its memory in again), so every 10 s is 0.07 % of a core for the three
face models, and a burst's memory is back within 10 s."""
__all__ = ["ModelError", "Session", "choose_providers", "load_session", "provider_of"]


def _heap_trimmer() -> Callable[[], object]:
    """glibc's `malloc_trim(0)`, or nothing where the C library has none (musl, macOS)."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: malloc_trim(0)


_trim_heap = _heap_trimmer()


class Session(ort.InferenceSession):
    """An onnxruntime session that returns its arena's idle memory every `release_every_s`.

    onnxruntime's CPU arena grows to fit the largest batch a session has run and never
    shrinks by itself. A node that falls behind for a moment takes bigger batches, and its
    memory stayed up by that much, step after step (+21.5 % RSS in a 30-minute soak). At a
    release the run asks onnxruntime to free the arena's idle regions, then glibc to hand
    free heap pages back to the system (freed regions land in the heap, since glibc raises
    its mmap threshold after the first large free).
    """

    def __init__(self, path: str, options: ort.SessionOptions, providers: list[str],
                 release_every_s: float = RELEASE_EVERY_S) -> None:
        super().__init__(path, options, providers=providers)
        self.release_every_s = release_every_s
        self._next_release = time.monotonic() + release_every_s
        self._release = ort.RunOptions()
        self._release.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any],
            run_options: ort.RunOptions | None = None) -> list[Any]:
        if run_options is not None or time.monotonic() < self._next_release:
            return super().run(output_names, input_feed, run_options)
        self._next_release = time.monotonic() + self.release_every_s
        outputs = super().run(output_names, input_feed, self._release)
        _trim_heap()
        return outputs


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


def session_options(threads: int = 0) -> ort.SessionOptions:
    """onnxruntime options for a node's sessions: `threads` intra-op threads (0: its own
    choice), one inter-op thread, idle threads sleeping instead of spinning (a node shares
    two cores with captures and the dashboard, and spinning workers slowed everything on a
    loaded machine), warnings off."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def load_session(path: Path, inputs: dict[str, int], *, providers: list[str],
                 threads: int = 0, release_every_s: float = RELEASE_EVERY_S) -> Session:
    """A session for `path` whose inputs are exactly `inputs` (name → rank)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        session = Session(str(path), session_options(threads), providers, release_every_s)
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        raise ModelError(f"cannot load model {path}: {exc}") from None
    found = {i.name: len(i.shape) for i in session.get_inputs()}
    if found != inputs:
        raise ModelError(f"model {path} has inputs {found}, expected {inputs}")
    return session


def provider_of(session: ort.InferenceSession) -> str:
    return session.get_providers()[0]
