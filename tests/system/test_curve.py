"""CURVE on the ZeroMQ links: with keys the pipeline works; a peer without an authorized
key gets nothing, and what it sends is never heard."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zmq
import zmq.auth

from tests.helpers import TOKEN, open_ws
from wellmon.harness import dashboard_ws_url, get_json, ready_url
from wellmon.live_reader import scores_until
from wellmon.models.node.service import STATS_EVERY_S
from wellmon.streamer.wire.protocol import VideoFrame, encode_media

SAMPLE = str(Path(__file__).resolve().parents[2] / "streamer/sample/sample.mp4")


def make_keys(directory: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "wellmon", "keys", str(directory)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("server.key", "server.key_secret", "client.key", "client.key_secret",
                 "authorized/client.key"):
        assert (directory / name).is_file(), name
    assert (directory / "server.key_secret").stat().st_mode & 0o077 == 0


def received_within(sock: zmq.Socket, seconds: float) -> int:
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sock.poll(100):
            sock.recv_multipart()
            count += 1
    return count


def rogue_subscriber(context: zmq.Context, address: str, keys: Path | None) -> zmq.Socket:
    sock = context.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    if keys is not None:  # its own key pair, and the server's public key (which is public)
        public, secret = zmq.auth.create_certificates(keys, "rogue")
        sock.curve_publickey, sock.curve_secretkey = zmq.auth.load_certificate(secret)
        sock.curve_serverkey, _ = zmq.auth.load_certificate(keys.parent / "keys/server.key")
    sock.connect(address)
    return sock


def test_with_keys_the_pipeline_works_and_a_peer_without_them_gets_nothing(
        processes, wellmon_env, tmp_path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    processes.env = {**wellmon_env, "WELLMON_WIRE_CURVE_DIR": str(keys),
                     "WELLMON_ASR_ENGINE": "off"}
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    processes.start("capture", "capture", "--modality", "video", "--source", SAMPLE,
                    "--stream", "secret")
    with open_ws(dashboard_ws_url(dashboard.ready_line)) as ws:
        scores_until(ws, lambda s: s["stream"] == "secret" and s["state"] == "live",
                     timeout=60)  # encrypted end to end, and working

    context = zmq.Context()
    (tmp_path / "rogue").mkdir()
    plain = rogue_subscriber(context, wellmon_env["WELLMON_NODE_OUTPUT"], None)
    wrong = rogue_subscriber(context, wellmon_env["WELLMON_NODE_OUTPUT"], tmp_path / "rogue")
    assert received_within(plain, 3.0) == 0
    assert received_within(wrong, 1.0) == 0

    # A publisher without keys cannot inject frames: the node never counts them.
    sender = context.socket(zmq.PUB)
    sender.setsockopt(zmq.LINGER, 0)
    sender.connect(wellmon_env["WELLMON_NODE_INPUT"])
    image = np.zeros((48, 64, 3), np.uint8)
    for seq in range(30):
        sender.send_multipart(encode_media(VideoFrame("intruder", seq, time.time_ns(), image,
                                                      15.0)))
        time.sleep(0.05)
    time.sleep(STATS_EVERY_S + 1)  # the node's next statistics cover the attempt
    url = ready_url(dashboard.ready_line)
    status = get_json(f"{url}api/status", TOKEN)
    assert status["node"]["streams"] == ["secret"]  # never heard of the intruder
    assert "video" in status["node"]["received"]
    for sock in (plain, wrong, sender):
        sock.close()
    context.term()
