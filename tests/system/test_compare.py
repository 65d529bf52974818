"""`wellmon compare` on a test-sized cross-modal benchmark: every architecture and every
unimodal ablation trained on one split and measured, the report written, and a second call
keeps the finished runs instead of redoing them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("torch", reason="torch not installed: training needs it")


def wellmon(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wellmon", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=1800)


def test_compare_trains_every_run_once_and_reports_them(tmp_path: Path) -> None:
    made = wellmon("datasets", "make", "crossmodal", "data", "--speakers", "3",
                   "--sentences", "1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    config = tmp_path / "config.yaml"
    config.write_text("asr:\n  engine: 'off'\n")  # the words are not the point here: speed
    argv = ("--config", str(config), "compare", "data/manifest.csv", "--out", "cmp",
            "--epochs", "2", "--no-progress")
    first = wellmon(*argv, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    names = [r["name"] for r in summary["runs"]]
    assert names == ["gaam-corect", "mmmla", "mm-b", "sc-lstm", "bc-lstm", "bimha", "late",
                     "gaam-corect, audio only",
                     "gaam-corect, text only", "gaam-corect, visual only",
                     "gaam-corect, physiology only"]
    for run in summary["runs"]:
        assert run["clip"]["n"] == summary["clips"]["test"] == 5  # one held-out speaker
        assert 0 <= run["clip"]["ua"] <= 1 and run["parameters"] > 0
        assert run["flops_per_window"] > run["parameters"]
        assert run["latency_ms"]["batch_1"] > 0 and run["latency_ms"]["batch_16"] > 0
    report = (tmp_path / "cmp" / "comparison.md").read_text()
    assert all(f"| {name} |" in report for name in names)
    assert cv2.imread(str(tmp_path / "cmp" / "comparison.png")) is not None
    again = wellmon(*argv, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done before, kept") == len(names)


def test_an_unknown_architecture_to_compare_is_one_line(tmp_path: Path) -> None:
    result = wellmon("compare", "data.csv", "--out", "cmp", "--arch", "mm-b,bimha2",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("wellmon: compare: --arch: unknown bimha2: expected all or some "
                             "of gaam-corect, mmmla, mm-b, sc-lstm, bc-lstm, bimha, late\n")
