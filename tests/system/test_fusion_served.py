"""A running node serves every causal fusion architecture through `perception.fusion_model`,
with no code change: each exported file is loaded by `wellmon infer`, and score messages with
emotions reach a dashboard client. bc-lstm, which reads the windows after each one, is
refused by the node by name and served by `wellmon replay`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: exporting needs it")

from tests.helpers import TOKEN, open_ws  # noqa: E402
from wellmon.harness import dashboard_ws_url, get_json, ready_url  # noqa: E402
from wellmon.live_reader import scores_until  # noqa: E402
from wellmon.models.training.architectures import ARCHITECTURES, make_network  # noqa: E402
from wellmon.models.training.export import export_onnx  # noqa: E402

CAUSAL = [name for name in ARCHITECTURES if make_network(name).causal]


def exported(arch: str, folder: Path) -> Path:
    """A file of `arch` as if trained: every layer moved off its expert start."""
    torch.manual_seed(0)
    net = make_network(arch).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return export_onnx(net, folder / f"{arch}.onnx", "trained", {"wellmon.arch": arch})


@pytest.mark.parametrize("arch", CAUSAL)
def test_the_node_serves_an_exported_architecture(arch, processes, clip, tmp_path) -> None:
    model = exported(arch, tmp_path)
    processes.env.update({"WELLMON_PERCEPTION_FUSION_MODEL": str(model),
                          "WELLMON_ASR_ENGINE": "off"})
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    path, _ = clip
    for modality in ("video", "audio"):
        processes.start(f"capture-{modality}", "capture", "--modality", modality,
                        "--source", str(path), "--stream", "cam-a")
    with open_ws(dashboard_ws_url(dashboard.ready_line)) as ws:
        scores = scores_until(ws, lambda s: s["stream"] == "cam-a" and s["emotions"]
                              and s["quality"]["video"]["coverage"] >= 0.9, timeout=120)
    last = scores[-1]
    assert abs(sum(last["emotions"].values()) - 1.0) < 1e-3
    assert -1 <= last["valence"] <= 1 and last["latency_ms"]["fusion"] > 0
    url, deadline = ready_url(dashboard.ready_line) + "api/status", time.monotonic() + 60
    while "fusion" not in (node := get_json(url, TOKEN)["node"]):  # its stats come each 1 s
        assert time.monotonic() < deadline, node
        time.sleep(0.2)
    assert node["fusion"].startswith(f"fusion {model.name} ({arch}, trained)"), node


def test_the_node_refuses_a_model_that_reads_later_windows(tmp_path, wellmon_env) -> None:
    assert "bc-lstm" not in CAUSAL
    model = exported("bc-lstm", tmp_path)
    node = subprocess.run([sys.executable, "-m", "wellmon", "infer"], capture_output=True,
                          text=True, timeout=120,
                          env={**wellmon_env, "WELLMON_PERCEPTION_FUSION_MODEL": str(model)})
    assert node.returncode == 2
    assert node.stderr == (f"wellmon: perception.fusion_model {model}: a bc-lstm model reads "
                           "the windows after each one, so it cannot be served live; use it "
                           "with `wellmon replay`, or train a causal architecture for the "
                           "node\n")


def test_replay_serves_a_model_that_reads_later_windows(clip, tmp_path, wellmon_env) -> None:
    model = exported("bc-lstm", tmp_path)
    path, truth = clip
    out = tmp_path / "scores.jsonl"
    done = subprocess.run([sys.executable, "-m", "wellmon", "replay", str(path), "--out",
                           str(out), "--no-progress"], capture_output=True, text=True,
                          timeout=300, env={**wellmon_env, "WELLMON_ASR_ENGINE": "off",
                                            "WELLMON_PERCEPTION_FUSION_MODEL": str(model)})
    assert done.returncode == 0, done.stderr
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    assert scores[-1]["t_end"] >= truth["duration_s"] - 0.5
    assert all(abs(sum(s["emotions"].values()) - 1.0) < 1e-3 for s in scores)
    assert len({json.dumps(s["emotions"]) for s in scores}) > 1  # not one constant output
