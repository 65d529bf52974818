"""Two inference nodes behind `wellmon proxy` share four streams by rendezvous hashing; when
one dies its streams move to the other, and come back when it returns."""

from __future__ import annotations

import time

import pytest

from tests.helpers import FAST_STATES, TOKEN
from wellmon.harness import free_tcp_port
from wellmon.live_reader import LiveReader
from wellmon.models.node.sharding import rendezvous


def split_ids() -> tuple[list[str], list[str]]:
    """Four stream ids, two that node 0 of 2 serves and two that node 1 does."""
    by_node: dict[int, list[str]] = {0: [], 1: []}
    for k in range(100):
        stream = f"cam-{k}"
        owner = rendezvous(stream, [0, 1])
        if len(by_node[owner]) < 2:
            by_node[owner].append(stream)
    return by_node[0], by_node[1]


class Listener(LiveReader):
    """Every message of a dashboard WebSocket, in a thread, with its arrival time."""

    def scores(self, since: float = 0.0) -> list[dict]:
        return [m["score"] for t, m in list(self.messages) if m["type"] == "score" and t >= since]

    def node_stats(self, since: float) -> dict[str, dict]:
        return {m["node"]["name"]: m["node"] for t, m in list(self.messages)
                if m["type"] == "node" and t >= since}

    def wait(self, what: str, done, timeout: float = 90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = done()
            if result:
                return result
            time.sleep(0.25)
        seen = {(s["stream"], s["state"]) for s in self.scores()[-40:]}
        raise AssertionError(f"timed out waiting for {what}; recent (stream, state): "
                             f"{sorted(seen)}; nodes: {self.node_stats(0.0)}")


@pytest.fixture()
def scale_out(processes, wellmon_env, clip):
    path, _ = clip
    processes.env = {**wellmon_env, **FAST_STATES, "WELLMON_WIRE_PROXY": "true",
                     "WELLMON_ASR_ENGINE": "off",
                     **{f"WELLMON_PROXY_{k}": f"tcp://127.0.0.1:{free_tcp_port()}"
                        for k in ("MEDIA_IN", "MEDIA_OUT", "SCORES_IN", "SCORES_OUT")}}
    processes.start("proxy", "proxy")
    for k in (0, 1):
        start_node(processes, k)
    processes.start("dashboard", "dashboard")
    ours, theirs = split_ids()
    for stream in ours + theirs:
        processes.start(f"capture-{stream}", "capture", "--modality", "video",
                        "--source", str(path), "--stream", stream)
    with Listener(processes.ws_url(), TOKEN) as listener:
        listener.connected.wait()  # connecting has a timeout of its own
        listener.check()
        yield processes, listener, ours, theirs


def start_node(processes, k: int) -> None:
    env = processes.env
    processes.env = {**env, "WELLMON_NODE_SHARD": f"{k}/2", "WELLMON_NODE_NAME": f"node-{k}"}
    try:
        processes.start(f"node-{k}", "infer")
    finally:
        processes.env = env


def live_streams(scores: list[dict]) -> set[str]:
    return {s["stream"] for s in scores if s["state"] == "live"}


def serving(listener: Listener, since: float, node: str) -> set[str]:
    stats = listener.node_stats(since)
    return set(stats[node]["streams"]) if node in stats else set()


def test_each_stream_is_served_by_one_node_and_moves_when_its_node_dies(scale_out) -> None:
    processes, listener, ours, theirs = scale_out
    everything = set(ours + theirs)
    listener.wait("all four streams live", lambda: live_streams(listener.scores()) >= everything)
    settled = time.time()
    listener.wait("both nodes' statistics", lambda: len(listener.node_stats(settled)) == 2,
                  timeout=20)
    assert serving(listener, settled, "node-0") == set(ours)
    assert serving(listener, settled, "node-1") == set(theirs)
    windows = [(s["stream"], s["t_end"]) for s in listener.scores()]
    assert len(windows) == len(set(windows))  # no window was scored twice

    killed = time.time()
    processes.kill("node-1")
    listener.wait("node-1's streams live again, from node-0",
                  lambda: live_streams(listener.scores(since=killed + 4.0)) >= everything)
    listener.wait("node-0 serving all four", lambda: serving(listener, killed + 4.0, "node-0")
                  == everything, timeout=20)
    # node-0's own streams went on without a missing window through the takeover.
    for stream in ours:
        ends = sorted(s["t_end"] for s in listener.scores() if s["stream"] == stream)
        steps = {round(b - a, 3) for a, b in zip(ends, ends[1:])}
        assert steps == {0.5}, (stream, steps)

    back = time.time()
    start_node(processes, 1)
    listener.wait("node-1 serving its two again", lambda: serving(listener, back + 1.0,
                                                                   "node-1") == set(theirs),
                  timeout=30)
    listener.wait("node-0 back to its two", lambda: serving(listener, back + 6.0, "node-0")
                  == set(ours), timeout=30)
    recent = [(s["stream"], s["t_end"]) for s in listener.scores(since=back + 6.0)]
    assert len(recent) == len(set(recent))  # the streams moved back without duplicates
    assert live_streams(listener.scores(since=back + 6.0)) >= everything
    alive = {name: proc.poll() is None for name, proc in processes.procs.items()}
    assert all(alive.values()), alive  # nothing else was restarted or died
