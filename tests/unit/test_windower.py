"""The node's streaming core in process: typed frames and chunks in, on a clock the test
sets, windows out. No process is started; perception and fusion are the real ones (the
frames are blank, so no face is found and nothing waits on a model's output)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from wellmon.config import AsrConfig, NodeConfig, PerceptionConfig
from wellmon.models.fusion.serving import load_fusion
from wellmon.models.node.windowing import Windower
from wellmon.models.perception.pipeline import Perception
from wellmon.streamer.wire.protocol import AudioChunk, VideoFrame
from wellmon.streamer.wire.score import ScoreMessage

NS = 1_000_000_000
FPS = 15
RATE = 16_000
CHUNK_S = 0.1
TRANSIT_NS = 20_000_000  # capture to node, every item
START_NS = 1_000 * NS + 123_456_789  # capture clocks do not start on the hop grid


@pytest.fixture()
def core() -> Iterator[Windower]:
    windower = Windower(NodeConfig(), Perception(PerceptionConfig(), AsrConfig(engine="off")),
                        load_fusion(PerceptionConfig()))
    yield windower
    windower.perception.close()


def media(stream: str, start_ns: int, seconds: float, video: bool = True,
          audio: bool = True) -> list[VideoFrame | AudioChunk]:
    """A stream's frames (blank 64x48) and 100 ms chunks (quiet noise), in capture order."""
    items: list[VideoFrame | AudioChunk] = []
    if video:
        items += [VideoFrame(stream, i, start_ns + i * NS // FPS,
                             np.zeros((48, 64, 3), np.uint8), float(FPS))
                  for i in range(int(seconds * FPS))]
    if audio:
        noise = np.random.default_rng(0).normal(0, 300, int(RATE * CHUNK_S)).astype(np.int16)
        items += [AudioChunk(stream, i, start_ns + int(i * CHUNK_S * NS), noise, RATE)
                  for i in range(int(seconds / CHUNK_S))]
    return sorted(items, key=lambda it: it.t_capture_ns)


def feed(core: Windower, items: list[VideoFrame | AudioChunk]) -> list[ScoreMessage]:
    """Each item arrives TRANSIT_NS after its capture; the node looks after every arrival."""
    out = []
    for item in items:
        now = item.t_capture_ns + TRANSIT_NS
        core.insert([item], now)
        out += core.process(now)
    return out


def test_windows_end_on_the_hop_grid_and_follow_each_other(core: Windower) -> None:
    scores = feed(core, media("cam", START_NS, 6.0))
    ends = [round(s.t_end * NS) for s in scores]
    hop, window = int(NodeConfig().hop_s * NS), int(NodeConfig().window_s * NS)
    assert ends and all(e % hop == 0 for e in ends)
    assert np.all(np.diff(ends) == hop)
    assert ends[0] == (START_NS // hop + 1) * hop  # the first grid point after the first item
    assert all(round(s.t_start * NS) == round(s.t_end * NS) - window for s in scores)
    assert [s.seq for s in scores] == list(range(1, len(scores) + 1))
    last = scores[-1]
    assert last.state == "live" and last.quality["video"]["state"] == "live"
    assert last.quality["video"]["coverage"] == pytest.approx(1.0, abs=0.02)
    assert last.quality["audio"]["coverage"] == pytest.approx(1.0, abs=0.03)
    assert last.quality["face"]["present"] == 0  # blank frames: measured, no face


def test_a_silent_stream_goes_stale_then_lost_then_is_forgotten(core: Windower) -> None:
    feed(core, media("cam", START_NS, 3.0))
    last_ns = START_NS + 3 * NS
    cfg = NodeConfig()
    assert core.process(last_ns + NS // 2) == []  # still live: windows wait for its data
    states = []
    for after_s in (cfg.stale_after_s + 0.5, cfg.lost_after_s + 0.5):
        scores = core.process(last_ns + int(after_s * NS))  # now on the wall clock
        assert scores and all(s.t_end * NS <= last_ns + after_s * NS for s in scores)
        states.append(scores[-1].state)
    assert states == ["stale", "lost"]
    assert core.process(last_ns + int((cfg.forget_after_s + 1) * NS)) == []
    assert "cam" not in core.streams


def test_a_frame_that_waited_too_long_is_skipped_and_counted(core: Windower) -> None:
    items = media("cam", START_NS, 3.0, audio=False)
    feed(core, items[:-1])
    late = items[-1]
    wait_ns = int((NodeConfig().late_after_s + 0.5) * NS)
    assert core.insert([late], late.t_capture_ns + TRANSIT_NS + wait_ns) == 0
    scores = core.process(late.t_capture_ns + TRANSIT_NS + wait_ns + NS)
    assert scores and scores[-1].quality["video"]["late"] == 1
    assert core.late_frames == 1


def test_two_interleaved_streams_get_their_own_windows(core: Windower) -> None:
    a = media("a", START_NS, 5.0)
    b = media("b", START_NS + 250_000_000, 5.0, video=False)  # audio only, a quarter later
    scores = feed(core, sorted(a + b, key=lambda it: it.t_capture_ns))
    by_stream = {name: [s for s in scores if s.stream == name] for name in ("a", "b")}
    for name, own in by_stream.items():
        assert own and [s.seq for s in own] == list(range(1, len(own) + 1)), name
    assert all(s.quality["video"]["state"] == "absent" for s in by_stream["b"])
    assert all(s.quality["video"]["present"] for s in by_stream["a"])
    core.forget("a")
    assert set(core.streams) == {"b"}
    again = feed(core, media("a", START_NS + 6 * NS, 1.0, audio=False))
    assert again and again[0].seq == 1, "a forgotten stream comes back as a new one"


def test_an_audio_only_stream_follows_the_audio_clock(core: Windower) -> None:
    scores = feed(core, media("mic", START_NS, 3.0, video=False))
    assert scores, "windows from audio alone"
    last_audio_end = START_NS + 3 * NS
    assert round(scores[-1].t_end * NS) <= last_audio_end
    assert scores[-1].signals["audio_level_db"] is not None


def test_a_stream_whose_clock_starts_at_zero_keeps_its_first_frame(core: Windower) -> None:
    """Replay's clock starts at 0: a frame captured and arrived at 0 ns is an arrival like
    any other, not "never heard from" (which forgot the stream, and the face track and
    estimators that had seen that frame, right after it)."""
    blank = np.zeros((48, 64, 3), np.uint8)
    core.insert([VideoFrame("file", 0, 0, blank, float(FPS))], 0)
    core.process(0)
    stream = core.streams["file"]
    later = NS // FPS
    core.insert([VideoFrame("file", 1, later, blank, float(FPS))], later)
    core.process(later)
    assert core.streams["file"] is stream
    assert len(stream.tracks["video"].items) == 2
