"""onnxruntime sessions give back the memory a burst of big batches took.

A node that falls behind for a moment runs bigger face batches; onnxruntime's arena grows
for them and, left alone, keeps that memory for good (the node's RSS rose in steps through
a soak). `Session` returns it every `release_every_s`. RSS here is the process's own
`/proc/self/statm` reading, the same figure `wellmon bench soak` reports.
"""

from __future__ import annotations

import math

import numpy as np

from models.runtime import CPU, WEIGHTS, load_session

LANDMARKS = WEIGHTS / "face_landmark.onnx"
BURST = 16  # the node's largest face batch (models/node.py MAX_FRAMES)
MB = 2**20


def rss_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * 4096


def growth_over_a_burst(release_every_s: float, batch: np.ndarray) -> tuple[int, list]:
    """RSS growth across one batch of `BURST` after a warm-up run of one, and the outputs."""
    session = load_session(LANDMARKS, {"input": 4}, providers=[CPU],
                           release_every_s=release_every_s)
    session.run(None, {"input": batch[:1]})
    before = rss_bytes()
    outputs = session.run(None, {"input": batch})
    return rss_bytes() - before, outputs


def test_a_session_returns_the_memory_of_a_burst_when_its_release_is_due() -> None:
    batch = np.random.default_rng(0).random((BURST, 3, 192, 192), dtype=np.float32)
    released, released_out = growth_over_a_burst(0.0, batch)
    kept, kept_out = growth_over_a_burst(math.inf, batch)
    assert kept > 10 * MB, f"a batch of {BURST} grew RSS by only {kept / MB:.1f} MB"
    assert released < kept / 4, (f"released {released / MB:.1f} MB vs kept {kept / MB:.1f} "
                                 "MB: the arena kept the burst's memory")
    for a, b in zip(released_out, kept_out):
        np.testing.assert_array_equal(a, b)
