"""onnxruntime sessions give back the memory a burst of big batches took.

A node that falls behind for a moment runs bigger face batches; onnxruntime's arena grows
for them and, left alone, keeps that memory for good (the node's RSS rose in steps through
a soak). `Session` returns it every `release_every_s`. Each measurement runs in a fresh
Python process, since free memory that earlier tests left in this one would hide the
growth, and reads its RSS from `/proc/self/statm`, as `wellmon bench soak` does.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from wellmon.models import WEIGHTS
from wellmon.models.perception.runtime import CPU, load_session

ROOT = Path(__file__).resolve().parents[2]
LANDMARKS = WEIGHTS / "face_landmark.onnx"
BURST = 16  # the node's largest face batch (models/node/service.py MAX_FRAMES)
MB = 2**20
BURST_PROBE = """
import sys
import numpy as np
from pathlib import Path
from wellmon.models.perception.runtime import CPU, load_session

def rss_bytes():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

model, burst, release_every_s = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
batch = np.random.default_rng(0).random((burst, 3, 192, 192), dtype=np.float32)
session = load_session(model, {"input": 4}, providers=[CPU], release_every_s=release_every_s)
session.run(None, {"input": batch[:1]})
before = rss_bytes()
session.run(None, {"input": batch})
print(rss_bytes() - before)
"""


def rss_growth_over_a_burst(release_every_s: float) -> int:
    """Bytes of RSS a fresh process gains over one batch of `BURST` after a run of one."""
    result = subprocess.run([sys.executable, "-c", BURST_PROBE, str(LANDMARKS), str(BURST),
                             str(release_every_s)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_a_session_returns_the_memory_of_a_burst_when_its_release_is_due() -> None:
    kept = rss_growth_over_a_burst(math.inf)
    released = rss_growth_over_a_burst(0.0)
    assert kept > 10 * MB, f"a batch of {BURST} grew RSS by only {kept / MB:.1f} MB"
    assert released < kept / 4, (f"released {released / MB:.1f} MB vs kept {kept / MB:.1f} "
                                 "MB: the arena kept the burst's memory")


def test_a_release_leaves_the_outputs_unchanged() -> None:
    batch = np.random.default_rng(1).random((BURST, 3, 192, 192), dtype=np.float32)
    outputs = [load_session(LANDMARKS, {"input": 4}, providers=[CPU], release_every_s=every)
               .run(None, {"input": batch}) for every in (0.0, math.inf)]
    for released, kept in zip(*outputs):
        np.testing.assert_array_equal(released, kept)
