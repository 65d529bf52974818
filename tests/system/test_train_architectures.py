"""Every fusion architecture trains on the cross-modal benchmark through `wellmon train`,
sharing one kept set of measured windows (`--features`), and its card says what it is and
what it costs; the served file says which architecture it holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch not installed: training needs it")

from wellmon.models.fusion.serving import FusionModel  # noqa: E402
from wellmon.models.training.architectures import ARCHITECTURES  # noqa: E402


def wellmon(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wellmon", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-sized benchmark (3 speakers, one sentence a class), speech-to-text off: the
    words are not the point here."""
    root = tmp_path_factory.mktemp("crossmodal")
    made = wellmon("datasets", "make", "crossmodal", "data", "--speakers", "3",
                   "--sentences", "1", cwd=root)
    assert made.returncode == 0, made.stderr
    (root / "config.yaml").write_text("asr:\n  engine: 'off'\n")
    return root


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_each_architecture_trains_and_its_card_says_what_it_is(arch: str,
                                                               benchmark: Path) -> None:
    out = f"model-{arch}"
    done = wellmon("--config", "config.yaml", "train", "data/manifest.csv", "--arch", arch,
                   "--out", out, "--epochs", "3", "--features", "features", "--no-progress",
                   cwd=benchmark)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test speakers: clip accuracy" in done.stdout
    card = json.loads((benchmark / out / "MODEL_CARD.json").read_text())
    training = card["training"]
    assert training["arch"] == arch
    assert training["parameters"] > 0 and training["flops_per_window"] > training["parameters"]
    assert training["onnx_matches_torch_on_test"] is True
    assert card["metrics"]["test"]["n"] == 5  # one held-out speaker, one clip a class
    model = FusionModel(benchmark / out / "fusion.onnx")
    assert (model.arch, model.kind) == (arch, "trained")
    assert len(list((benchmark / "features").glob("*.npz"))) == 15  # measured once, kept
