"""Exposure beyond this host (issue 21, findings 5 and 6): a ZeroMQ address beyond loopback
needs CURVE keys, the dashboard beyond loopback needs TLS, metrics beyond loopback need an
explicit opt-in; otherwise each process refuses to start with one line and status 2. The
opt-ins (`insecure: true`) start with a warning, and loopback starts silently.

Sockets beyond loopback are only ever bound (0.0.0.0, briefly); every connection goes to
127.0.0.1 (a connect to tcp://0.0.0.0 reaches this host too)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth

from tests.system.test_curve import make_keys
from wellmon.harness import free_tcp_port
from wellmon.streamer.wire.exposure import beyond_loopback
from wellmon.streamer.wire.protocol import VideoFrame, encode_media

ROOT = Path(__file__).resolve().parents[2]
WARNING = "wellmon: warning:"
PROXY_KEYS = ("MEDIA_IN", "MEDIA_OUT", "SCORES_IN", "SCORES_OUT")


def refused(args: list[str], env: dict[str, str]) -> str:
    """The stderr of `wellmon ARGS`, which must exit 2 at once with one line and nothing on
    stdout (no READY: it never started). A process that keeps running fails the test."""
    proc = subprocess.Popen([sys.executable, "-m", "wellmon", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"wellmon {' '.join(args)} started instead of refusing: "
                             f"{out}{err}") from None
    assert proc.returncode == 2, (proc.returncode, out, err)
    assert out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wellmon: config error: "), err
    return lines[0]


def log_of(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.log").read_text()


def exposed(port: int | None = None) -> str:
    return f"tcp://0.0.0.0:{port or free_tcp_port()}"


@pytest.mark.parametrize("address, beyond", [
    ("tcp://127.0.0.1:5555", False), ("tcp://127.8.9.10:5555", False),
    ("tcp://[::1]:5555", False), ("tcp://localhost:5555", False),
    ("ipc:///tmp/wellmon.sock", False), ("inproc://scores", False),
    ("tcp://0.0.0.0:5555", True), ("tcp://*:5555", True), ("tcp://[::]:5555", True),
    ("tcp://192.168.1.20:5555", True), ("tcp://eth0:5555", True),
    ("tcp://node.example:5555", True), ("tcp://127.0.0.1:0;10.0.0.5:5555", True),
    ("epgm://eth0;239.192.1.1:5555", True),
])
def test_what_counts_as_beyond_loopback(address: str, beyond: bool) -> None:
    assert beyond_loopback(address) is beyond


@pytest.mark.parametrize("role, args, setting", [
    ("node binding", ["infer"], "node.input"),
    ("node binding", ["infer"], "node.output"),
    ("capture connecting", ["capture", "--modality", "video", "--source", "sample"],
     "node.input"),
    ("dashboard connecting", ["dashboard"], "node.output"),
    ("proxy binding", ["proxy"], "proxy.media_out"),
])
def test_a_zeromq_address_beyond_loopback_without_keys_is_refused(
        wellmon_env, role, args, setting) -> None:
    address = exposed()
    env = {**wellmon_env, "WELLMON_ASR_ENGINE": "off",
           **{f"WELLMON_PROXY_{k}": f"tcp://127.0.0.1:{free_tcp_port()}" for k in PROXY_KEYS},
           "WELLMON_" + setting.replace(".", "_").upper(): address}
    line = refused(args, env)
    assert f"{setting} is {address}, beyond loopback" in line, role
    assert "wellmon keys DIR" in line and "wire.curve_dir" in line
    assert "wire.insecure: true" in line


def test_wellmon_run_refuses_before_starting_any_child(wellmon_env) -> None:
    address = exposed()
    line = refused(["run", "--no-browser"], {**wellmon_env, "WELLMON_NODE_INPUT": address})
    assert f"node.input is {address}" in line  # and stdout is empty: nothing was started


def test_wire_insecure_starts_with_one_warning(processes, wellmon_env, tmp_path) -> None:
    address = exposed()
    processes.env = {**wellmon_env, "WELLMON_ASR_ENGINE": "off", "WELLMON_NODE_INPUT": address,
                     "WELLMON_WIRE_INSECURE": "true"}
    processes.start("node", "infer")
    warnings = [line for line in log_of(tmp_path, "node").splitlines() if WARNING in line]
    assert len(warnings) == 1, warnings  # once per start, not once per check or socket
    assert f"node.input is {address}" in warnings[0] and "wire.insecure" in warnings[0]


def test_the_dashboard_beyond_loopback_needs_tls(processes, wellmon_env, tmp_path) -> None:
    line = refused(["dashboard"], {**wellmon_env, "WELLMON_DASHBOARD_HOST": "0.0.0.0"})
    assert "dashboard.host is 0.0.0.0" in line and "dashboard.tls_cert" in line
    assert "dashboard.insecure: true" in line

    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_HOST": "0.0.0.0",
                     "WELLMON_DASHBOARD_INSECURE": "true"}
    processes.start("plain", "dashboard")
    warnings = [line for line in log_of(tmp_path, "plain").splitlines() if WARNING in line]
    assert len(warnings) == 1 and "dashboard.host is 0.0.0.0" in warnings[0], warnings

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_HOST": "0.0.0.0",
                     "WELLMON_DASHBOARD_TLS_CERT": str(cert),
                     "WELLMON_DASHBOARD_TLS_KEY": str(key),
                     "WELLMON_DASHBOARD_STORE": str(tmp_path / "tls-checks.db")}
    dashboard = processes.start("tls", "dashboard")
    assert "url=https://" in dashboard.ready_line
    assert WARNING not in log_of(tmp_path, "tls")


def test_metrics_beyond_loopback_need_the_opt_in_even_so(
        processes, wellmon_env, tmp_path) -> None:
    proxy_env = {f"WELLMON_PROXY_{k}": f"tcp://127.0.0.1:{free_tcp_port()}" for k in PROXY_KEYS}
    metrics = {"WELLMON_METRICS_ENABLED": "true", "WELLMON_METRICS_HOST": "0.0.0.0",
               "WELLMON_METRICS_PROXY_PORT": "0", "WELLMON_METRICS_NODE_PORT": "0",
               "WELLMON_METRICS_DASHBOARD_PORT": "0"}
    line = refused(["proxy"], {**wellmon_env, **proxy_env, **metrics})
    assert "metrics.host is 0.0.0.0" in line and "metrics.insecure: true" in line
    # the dashboard's HTTPS would not help: the metrics listener has no token at all
    line = refused(["dashboard"], {**wellmon_env, **metrics})
    assert "metrics.host is 0.0.0.0" in line

    processes.env = {**wellmon_env, **proxy_env, **metrics, "WELLMON_METRICS_INSECURE": "true"}
    proxy = processes.start("proxy", "proxy")
    assert "metrics=http://0.0.0.0:" in proxy.ready_line
    warnings = [line for line in log_of(tmp_path, "proxy").splitlines() if WARNING in line]
    assert len(warnings) == 1 and "metrics.host is 0.0.0.0" in warnings[0], warnings


def test_loopback_starts_silently(processes, wellmon_env, tmp_path) -> None:
    processes.env = {**wellmon_env, "WELLMON_ASR_ENGINE": "off",
                     **{f"WELLMON_PROXY_{k}": f"tcp://127.0.0.1:{free_tcp_port()}"
                        for k in PROXY_KEYS},
                     "WELLMON_METRICS_ENABLED": "true", "WELLMON_METRICS_PROXY_PORT": "0",
                     "WELLMON_METRICS_NODE_PORT": "0", "WELLMON_METRICS_DASHBOARD_PORT": "0"}
    for name, args in (("node", ["infer"]), ("dashboard", ["dashboard"]),
                       ("proxy", ["proxy"])):
        processes.start(name, *args)
        assert WARNING not in log_of(tmp_path, name), name


def test_an_insecure_flag_must_be_a_boolean(wellmon_env) -> None:
    line = refused(["infer"], {**wellmon_env, "WELLMON_WIRE_INSECURE": "maybe"})
    assert "wire.insecure: expected true or false" in line


def _curve_socket(context: zmq.Context, kind: int, keys: Path, name: str | None) -> zmq.Socket:
    """A client socket: the authorized client's keys (`name` "client"), a key pair of its
    own that no server authorized, or none at all (`name` None)."""
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if name is not None:
        if not (keys / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(keys, name)
        sock.curve_publickey, sock.curve_secretkey = zmq.auth.load_certificate(
            keys / f"{name}.key_secret")
        sock.curve_serverkey, _ = zmq.auth.load_certificate(keys / "server.key")
    return sock


def test_with_keys_a_node_on_all_interfaces_hears_only_authorized_peers(
        processes, wellmon_env, tmp_path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    inport, outport = free_tcp_port(), free_tcp_port()
    processes.env = {**wellmon_env, "WELLMON_ASR_ENGINE": "off",
                     "WELLMON_PERCEPTION_FACE": "false", "WELLMON_WIRE_CURVE_DIR": str(keys),
                     "WELLMON_NODE_INPUT": exposed(inport), "WELLMON_NODE_OUTPUT": exposed(outport)}
    processes.start("node", "infer")
    assert WARNING not in log_of(tmp_path, "node")  # keys: nothing to warn about

    context = zmq.Context()
    senders = {}
    for stream, name in (("friend", "client"), ("keyless", None), ("rogue", "rogue")):
        senders[stream] = _curve_socket(context, zmq.PUB, keys, name)
        senders[stream].connect(f"tcp://127.0.0.1:{inport}")
    readers = {name: _curve_socket(context, zmq.SUB, keys, name)
               for name in ("client", None, "rogue")}
    for sock in readers.values():
        sock.setsockopt(zmq.SUBSCRIBE, b"n.")
        sock.connect(f"tcp://127.0.0.1:{outport}")

    image = np.zeros((48, 64, 3), np.uint8)
    stats: list[dict] = []
    deadline = time.monotonic() + 120
    seq = 0
    # Until the node has reported the authorized stream twice (so the others had as long):
    while sum("friend" in s["streams"] for s in stats) < 2:
        assert time.monotonic() < deadline, f"the node never heard the friend: {stats[-1:]}"
        for stream, sock in senders.items():
            sock.send_multipart(encode_media(VideoFrame(stream, seq, time.time_ns(), image,
                                                        15.0)))
        seq += 1
        if readers["client"].poll(50):
            stats.append(json.loads(readers["client"].recv_multipart()[-1]))
    assert not any({"keyless", "rogue"} & set(s["streams"]) for s in stats), stats[-1]
    for name in (None, "rogue"):  # and the keyless or unauthorized readers got nothing
        assert readers[name].poll(0) == 0, name
    for sock in [*senders.values(), *readers.values()]:
        sock.close()
    context.term()
