"""The whole pipeline as real processes on loopback: what a dashboard client receives."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil

from tests.helpers import FAST_STATES, TOKEN, open_ws
from wellmon.harness import LocalPipeline, dashboard_ws_url
from wellmon.live_reader import scores_until


def _start_captures(processes, clip: Path) -> None:
    for modality in ("video", "audio"):
        processes.start(f"capture-{modality}", "capture", "--modality", modality,
                        "--source", str(clip), "--stream", "cam-a")


def test_scores_flow_from_capture_processes_to_a_websocket_client(processes, clip) -> None:
    path, truth = clip
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    _start_captures(processes, path)
    with open_ws(dashboard_ws_url(dashboard.ready_line)) as ws:
        scores = scores_until(ws, lambda s: s["quality"]["video"]["coverage"] >= 0.9)
    ours = [s for s in scores if s["stream"] == "cam-a"]
    assert len(ours) >= 6
    t_ends = [s["t_end"] for s in ours]
    assert t_ends == sorted(t_ends) and len(set(t_ends)) == len(t_ends)
    assert all(abs(b - a - 0.5) < 1e-6 for a, b in zip(t_ends, t_ends[1:]))
    last = ours[-1]
    assert last["state"] == "live"
    assert last["quality"]["audio"]["present"] and last["quality"]["video"]["present"]
    assert 0.05 < last["signals"]["brightness"] < 0.95
    assert last["signals"]["audio_level_db"] < 0
    assert last["stress"] is None  # the first minute sets the baseline: no number yet
    assert last["reasons"]["stress"].startswith("inconclusive: baseline not ready")
    assert max(last["emotions"], key=last["emotions"].get) == "happy"  # the smiling astronaut
    assert last["valence"] > 0.5 and -1 <= last["arousal"] <= 1  # fused by the ONNX model
    assert last["latency_ms"]["fusion"] > 0
    assert {d["modality"] for d in last["drivers"]} >= {"visual", "audio"}
    assert last["quality"]["face"]["present"] > 0.9
    with open_ws(dashboard_ws_url(dashboard.ready_line)) as ws:  # speech-to-text, live
        heard = scores_until(ws, lambda s: any(u["final"] for u in s["transcript"]),
                             timeout=60)[-1]
    assert any(u["text"] for u in heard["transcript"])
    assert abs(last["t_end"] - time.time()) < 3600  # the wall clock, not the file's own time
    assert last["latency_ms"]["capture_to_publish"] >= 0


def test_killed_captures_go_stale_then_lost_and_come_back_live(processes, clip) -> None:
    path, _ = clip
    processes.env.update(FAST_STATES)
    node = processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    _start_captures(processes, path)
    with open_ws(dashboard_ws_url(dashboard.ready_line)) as ws:
        scores_until(ws, lambda s: s["stream"] == "cam-a" and s["state"] == "live")
        processes.kill("capture-video")
        processes.kill("capture-audio")
        seen = scores_until(ws, lambda s: s["stream"] == "cam-a" and s["state"] == "lost")
        states = [s["state"] for s in seen if s["stream"] == "cam-a"]
        assert "stale" in states
        assert states.index("stale") < states.index("lost")
        assert seen[-1]["quality"]["video"]["state"] == "lost"
        empty = scores_until(ws, lambda s: not s["quality"]["video"]["present"])[-1]
        assert empty["signals"]["brightness"] is None  # no data in the window: null, not stale
        assert empty["signals"]["audio_level_db"] is None and empty["state"] == "lost"
        _start_captures(processes, path)
        scores_until(ws, lambda s: s["stream"] == "cam-a" and s["state"] == "live")
    assert node.poll() is None and dashboard.poll() is None  # neither was restarted
    assert processes.procs["node"] is node and processes.procs["dashboard"] is dashboard


def test_wellmon_run_starts_everything_and_stops_cleanly_on_sigterm(clip, tmp_path) -> None:
    path, _ = clip
    with LocalPipeline(str(path), TOKEN, tmp_path, args=("--stream", "demo")) as run:
        with open_ws(run.ws_url()) as ws:
            scores_until(ws, lambda s: s["stream"] == "demo" and s["state"] == "live")
        pids = run.child_pids()
        assert set(pids) == {"node", "dashboard", "capture-video", "capture-audio"}
        children = [psutil.Process(pid) for pid in pids.values()]
        assert run.close() == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    output = "\n".join(run.output)
    assert "wellmon: stopped" in output
    assert "Traceback" not in output


def test_wellmon_run_restarts_a_capture_that_dies(clip, tmp_path) -> None:
    path, _ = clip
    with LocalPipeline(str(path), TOKEN, tmp_path, extra_env=FAST_STATES) as run:
        with open_ws(run.ws_url()) as ws:
            scores_until(ws, lambda s: s["state"] == "live")
            first_video = run.child_pids()["capture-video"]
            os.kill(first_video, signal.SIGKILL)
            scores_until(ws, lambda s: s["state"] != "live")
            scores_until(ws, lambda s: s["state"] == "live")
        assert run.child_pids()["capture-video"] != first_video
        assert any("restarted capture-video" in line for line in run.output)


def test_supervisor_killed_leaves_no_orphans(clip, tmp_path) -> None:
    path, _ = clip
    run = LocalPipeline(str(path), TOKEN, tmp_path)
    with run:
        children = [psutil.Process(pid) for pid in run.child_pids().values()]
        run.proc.kill()  # SIGKILL: the supervisor gets no chance to clean up
        run.proc.wait()
        gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"orphans left: {[p.pid for p in alive]}"


def test_wellmon_run_refuses_a_taken_node_port_before_starting_a_child(
        clip, tmp_path, wellmon_env) -> None:
    import socket
    import subprocess
    import sys

    path, _ = clip
    port = int(wellmon_env["WELLMON_NODE_INPUT"].rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run([sys.executable, "-m", "wellmon", "run", "--source", str(path)],
                                env=wellmon_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"already in use: tcp://127.0.0.1:{port} (node.input)" in result.stderr
    assert "ready" not in result.stdout  # refused before any child started


def test_captures_survive_the_node_going_away_and_resume_when_it_returns(processes,
                                                                        clip) -> None:
    path, _ = clip
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    _start_captures(processes, path)
    with open_ws(dashboard_ws_url(dashboard.ready_line)) as ws:
        before = scores_until(ws, lambda s: s["state"] == "live")[-1]
        processes.kill("node")
        time.sleep(2.0)  # captures keep sending into the void meanwhile
        assert processes.procs["capture-video"].poll() is None
        assert processes.procs["capture-audio"].poll() is None
        processes.start("node", "infer")
        after = scores_until(ws, lambda s: s["state"] == "live"
                             and s["quality"]["audio"]["present"]
                             and s["t_end"] > before["t_end"] + 2.0)[-1]
    assert after["stream"] == "cam-a"


def test_a_client_that_connects_later_gets_the_recent_history(processes, clip) -> None:
    path, _ = clip
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    _start_captures(processes, path)
    url = dashboard_ws_url(dashboard.ready_line)
    with open_ws(url) as early:
        seen = scores_until(early, lambda s: s["seq"] >= 4)
    with open_ws(url) as late:
        chunks = [json.loads(late.recv(timeout=10))]
        while not chunks[-1].get("last"):  # the history comes in chunks of at most 60 s
            chunks.append(json.loads(late.recv(timeout=10)))
    assert all(c["type"] == "history" for c in chunks)
    history_ends = {s["t_end"] for c in chunks for s in c["scores"]}
    assert {s["t_end"] for s in seen} <= history_ends
