"""The README's two-host recipe, on two loopback addresses: captures with one config, the
node and the dashboard with another, one CURVE key directory for both."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.helpers import TOKEN, open_ws
from tests.system.test_curve import make_keys
from wellmon.harness import LocalPipeline, free_tcp_port
from wellmon.live_reader import scores_until

NODE_HOST = "127.0.0.2"  # another loopback address: Linux routes all of 127/8 to lo


def _write(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def test_captures_on_one_host_reach_the_node_and_dashboard_on_another(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)  # `wellmon keys DIR`, copied to both hosts
    node_input = f"tcp://{NODE_HOST}:{free_tcp_port()}"
    node_host = _write(tmp_path / "node.yaml", {
        "wire": {"curve_dir": str(keys)},
        "node": {"input": node_input, "output": f"tcp://{NODE_HOST}:{free_tcp_port()}"},
    })
    capture_host = _write(tmp_path / "capture.yaml", {
        "wire": {"curve_dir": str(keys)},
        "node": {"input": node_input},
        "capture": {"video_encoding": "jpeg"},
    })
    # LocalPipeline puts every address on free loopback ports through the environment,
    # which would override the files: the two hosts' addresses come from their configs.
    own_addresses = {"WELLMON_NODE_INPUT": None, "WELLMON_NODE_OUTPUT": None}
    with LocalPipeline("sample", TOKEN, tmp_path / "node-host", extra_env=own_addresses,
                       args=("--parts", "node,dashboard", "--config", str(node_host))) as node, \
            LocalPipeline("sample", TOKEN, tmp_path / "capture-host", extra_env=own_addresses,
                          args=("--parts", "capture", "--config", str(capture_host)),
                          ready_child="capture-audio") as captures:
        assert set(node.child_pids()) == {"node", "dashboard"}
        assert set(captures.child_pids()) == {"capture-video", "capture-audio"}
        with open_ws(node.ws_url()) as ws:
            scores_until(ws, lambda s: s["stream"] == "sample"
                         and s["quality"]["video"]["present"]
                         and s["quality"]["audio"]["present"]
                         and (s["quality"]["face"]["present"] or 0) > 0.5, timeout=60)
