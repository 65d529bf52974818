"""A running node serves every fusion architecture through `perception.fusion_model`, with
no code change: each exported file is loaded by `wellmon infer`, and score messages with
emotions reach a dashboard client."""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: exporting needs it")

from tests.helpers import TOKEN, open_ws  # noqa: E402
from wellmon.harness import dashboard_ws_url, get_json, ready_url  # noqa: E402
from wellmon.live_reader import scores_until  # noqa: E402
from wellmon.models.training.architectures import ARCHITECTURES, make_network  # noqa: E402
from wellmon.models.training.export import export_onnx  # noqa: E402


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_the_node_serves_an_exported_architecture(arch, processes, clip, tmp_path) -> None:
    torch.manual_seed(0)
    net = make_network(arch).eval()
    with torch.no_grad():  # as if trained: every layer off its expert start
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model = export_onnx(net, tmp_path / f"{arch}.onnx", "trained", {"wellmon.arch": arch})
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
