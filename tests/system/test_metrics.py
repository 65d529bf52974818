"""Prometheus metrics (metrics.enabled): every process of a real pipeline serves its own, with
plausible values after scores have flowed, and none of them opens a port by default."""

from __future__ import annotations

import re
import socket
import time
import urllib.request

import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, TOKEN, open_ws
from wellmon.harness import dashboard_ws_url, free_tcp_port
from wellmon.live_reader import scores_until
from wellmon.models.perception.asr_worker import QUEUE_CHUNKS

METRICS_URL = re.compile(r"metrics=(http://\S+)")


def scrape(url: str) -> tuple[dict[str, list], str]:
    """{sample name: [(labels, value)]} and the exposition text."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples, text


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    return sum(v for got, v in samples.get(name, []) if labels.items() <= got.items())


def metrics_url(proc) -> str:
    match = METRICS_URL.search(proc.ready_line)
    assert match, proc.ready_line
    return match.group(1)


def test_each_process_serves_its_metrics(processes, clip) -> None:
    path, _ = clip
    processes.env.update({
        "WELLMON_ASR_ENGINE": "off", "WELLMON_WIRE_PROXY": "true",
        "WELLMON_NODE_FORGET_AFTER_S": "3",
        **{f"WELLMON_PROXY_{k}": f"tcp://127.0.0.1:{free_tcp_port()}"
           for k in ("MEDIA_IN", "MEDIA_OUT", "SCORES_IN", "SCORES_OUT")},
        "WELLMON_METRICS_ENABLED": "true",
        **{f"WELLMON_METRICS_{role}_PORT": str(free_tcp_port())
           for role in ("NODE", "DASHBOARD", "PROXY")},
    })
    proxy = processes.start("proxy", "proxy")
    node = processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    captures = {m: processes.start(f"capture-{m}", "capture", "--modality", m, "--source",
                                   str(path), "--stream", "cam-a") for m in ("video", "audio")}
    urls = {"proxy": metrics_url(proxy), "node": metrics_url(node),
            "dashboard": metrics_url(dashboard),
            **{f"capture-{m}": metrics_url(p) for m, p in captures.items()}}
    assert urls["node"] == f"http://127.0.0.1:{processes.env['WELLMON_METRICS_NODE_PORT']}/metrics"
    assert dashboard_ws_url(dashboard.ready_line).startswith("ws://")  # url= still readable
    with open_ws(dashboard_ws_url(dashboard.ready_line)) as ws:
        scores_until(ws, lambda s: s["stream"] == "cam-a" and s["state"] == "live"
                     and s["quality"]["audio"]["present"] and s["quality"]["face"]["present"]
                     and "fusion" in s["latency_ms"], timeout=60)
        scraped = {name: scrape(url) for name, url in urls.items()}

    for name, (samples, text) in scraped.items():
        for secret in (TOKEN, KIOSK_TOKEN, ADMIN_TOKEN):
            assert secret not in text, name
        assert all(s.startswith("wellmon_") for s in samples), name
        assert value(samples, "wellmon_process_resident_memory_bytes") > 0, name

    samples, _ = scraped["node"]
    assert value(samples, "wellmon_node_received_messages_total", kind="video") > 0
    assert value(samples, "wellmon_node_received_messages_total", kind="audio") > 0
    assert value(samples, "wellmon_node_published_scores_total") > 0
    assert "wellmon_node_rejected_messages_total" not in samples  # none so far: no series
    for stage in ("window", "capture_to_publish", "capture_to_send", "send_to_node"):
        count = value(samples, "wellmon_node_stage_seconds_count", stage=stage)
        assert count > 0, stage
        assert 0 <= value(samples, "wellmon_node_stage_seconds_sum", stage=stage) / count < 5
    assert value(samples, "wellmon_node_fusion_seconds_count") > 0
    assert value(samples, "wellmon_node_fusion_batch_windows_count") > 0
    assert value(samples, "wellmon_node_fusion_batch_windows_sum") >= value(
        samples, "wellmon_node_fusion_batch_windows_count")
    frames = value(samples, "wellmon_node_face_batch_frames_sum")
    assert 0 < frames <= value(samples, "wellmon_node_received_messages_total", kind="video")
    assert value(samples, "wellmon_node_drained_messages_count") > 0
    providers = {labels["component"]: labels["provider"]
                 for labels, _ in samples["wellmon_node_provider_info"]}
    assert providers == {"perception": "CPUExecutionProvider", "fusion": "CPUExecutionProvider"}
    assert value(samples, "wellmon_node_streams") == 1
    assert 0 <= value(samples, "wellmon_node_asr_queued_chunks") <= QUEUE_CHUNKS
    assert value(samples, "wellmon_node_stream_windows_total", stream="cam-a") > 0

    samples, _ = scraped["dashboard"]
    assert value(samples, "wellmon_dashboard_received_scores_total") > 0
    assert value(samples, "wellmon_dashboard_publish_to_dashboard_seconds_count") > 0
    assert value(samples, "wellmon_dashboard_clients") == 1  # scraped while ours was open
    assert value(samples, "wellmon_dashboard_client_queue_max") >= 0
    assert "wellmon_dashboard_dropped_updates_total" in samples

    for modality in ("video", "audio"):
        samples, _ = scraped[f"capture-{modality}"]
        assert value(samples, "wellmon_capture_sent_messages_total") > 0
        (labels, _), = samples["wellmon_capture_info"]
        assert labels == {"stream": "cam-a", "modality": modality}

    samples, _ = scraped["proxy"]
    assert value(samples, "wellmon_proxy_forwarded_messages_total", flow="media") > 0
    assert value(samples, "wellmon_proxy_forwarded_messages_total", flow="scores") > 0

    # A forgotten stream leaves the node's metrics (node.forget_after_s: 3 s here).
    processes.kill("capture-video")
    processes.kill("capture-audio")
    deadline = time.monotonic() + 20
    while True:
        samples, _ = scrape(urls["node"])
        if value(samples, "wellmon_node_streams") == 0:
            break
        assert time.monotonic() < deadline, "cam-a was not forgotten"
        time.sleep(0.5)
    assert "wellmon_node_stream_windows_total" not in samples
    assert value(samples, "wellmon_node_published_scores_total") > 0  # counters stay


def listening_ports(pid: int) -> set[int]:
    return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN}


def test_metrics_are_off_by_default_and_open_no_port(processes, clip) -> None:
    path, _ = clip
    ports = {role: free_tcp_port() for role in ("NODE", "DASHBOARD", "CAPTURE")}
    processes.env.update({"WELLMON_ASR_ENGINE": "off",
                          **{f"WELLMON_METRICS_{r}_PORT": str(p) for r, p in ports.items()}})
    node = processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    capture = processes.start("capture", "capture", "--modality", "video", "--source",
                              str(path), "--stream", "cam-a")
    for proc in (node, dashboard, capture):
        assert "metrics=" not in proc.ready_line
    zmq_ports = {int(processes.env[f"WELLMON_NODE_{k}"].rsplit(":", 1)[1])
                 for k in ("INPUT", "OUTPUT")}
    assert listening_ports(node.pid) == zmq_ports
    assert listening_ports(capture.pid) == set()
    dashboard_port = int(dashboard.ready_line.rsplit(":", 1)[1].strip("/"))
    assert listening_ports(dashboard.pid) == {dashboard_port}
    for port in ports.values():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
