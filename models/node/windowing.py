"""Per-stream ring buffers and the windows cut from them: the node's streaming core.

`Windower.insert()` takes a batch of frames and audio chunks, has perception
measure them at once (the face models see every stream's frames in one call)
and keeps the measurements in each stream's ring buffers, keyed by capture
time; the frames themselves are not kept.
`Windower.process(now)` returns the score messages that are due, their
emotion, valence, arousal and stress fused by one onnxruntime call for all the
streams' due windows. Live and replay use this same class; only where the items
come from and what `now` means (the wall clock, or the replayed data's clock)
differ.

Each stream is one `Stream` object, made in `_stream()` on its first item and
dropped in `forget()`: its buffers, its perception (estimators, face track,
speech-to-text routing, transcript) and its fusion context go with it.

Windows end on a grid of `hop` seconds of capture time. A window is cut as
soon as the stream's clock passes a grid point: the video's clock while video
is live (a frame covers capture times up to the next frame), else the audio's.
Audio in the window is what has arrived, so the score is not held back by the
length of an audio chunk; `quality.audio.coverage` says how much of the window
it filled. When no modality is live the windows follow the wall clock, so a
dead stream keeps reporting `stale`, then `lost`, once per hop, until it is
forgotten. A window whose newest data of a live modality is older than
`late_after_s` when the window is ready is stale in it: a node that fell behind
does not publish the past as the present.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from wellmon.config import Config, NodeConfig
from wellmon.models.fusion import features, outputs
from wellmon.models.fusion.features import FusionInput
from wellmon.models.fusion.serving import FusionContext, FusionModel, FusionOutput, load_fusion
from wellmon.models.perception.asr import Utterance
from wellmon.models.perception.face import Face
from wellmon.models.perception.pipeline import Perception, StreamPerception
from wellmon.models.perception.records import FrameRecord, WindowSummary
from wellmon.models.perception.signals import ChunkMeasures, measure_chunk
from wellmon.models.stress.index import (
    MAX_BASELINE_SAMPLES,
    Baseline,
    StressIndex,
    StressResult,
)
from wellmon.streamer.wire.protocol import NS, AudioChunk, Media, VideoFrame
from wellmon.streamer.wire.score import ScoreMessage

MODALITIES = ("video", "audio")
FLOOR_RISE = 1e-3
"""How fast a track's quickest transit time is forgotten (1 ms a second): far faster than
clocks drift apart, far slower than a queue that matters grows."""


@dataclass
class Item:
    """One measured frame or chunk; `t_ns` is its capture time, `end_ns` the time it covers."""

    t_ns: int
    end_ns: int
    record: FrameRecord | ChunkMeasures
    t_sent_ns: int
    t_received_ns: int


@dataclass
class Track:
    """One modality of one stream: recent items and what the state needs to know."""

    items: deque[Item] = field(default_factory=deque)
    last_arrival_ns: int | None = None
    covered_ns: int = 0
    next_seq: int | None = None
    gaps: int = 0
    late: int = 0
    rate: float = 0.0
    transit_floor_ns: int | None = None
    floor_at_ns: int = 0

    def state(self, now_ns: int, cfg: NodeConfig) -> str:
        if self.last_arrival_ns is None:
            return "absent"
        age = (now_ns - self.last_arrival_ns) / NS
        if age < cfg.stale_after_s:
            return "live"
        return "stale" if age < cfg.lost_after_s else "lost"

    def note_seq(self, seq: int) -> None:
        """Count messages lost on the way (a capture restart starts again at 0)."""
        if self.next_seq is not None and seq > self.next_seq:
            self.gaps += seq - self.next_seq
        self.next_seq = seq + 1

    def note_transit(self, t_capture_ns: int, arrival_ns: int) -> int:
        """Note an item's capture-to-arrival time; return how much longer than this track's
        quickest item it took: the time it spent waiting in queues. Differences of the two
        clocks cancel out; the floor rises by `FLOOR_RISE` of the time that passes, so a
        capture clock that runs slow is not read as a growing queue."""
        transit = arrival_ns - t_capture_ns
        if self.transit_floor_ns is None or transit < self.transit_floor_ns:
            self.transit_floor_ns = transit
        else:
            self.transit_floor_ns += int((arrival_ns - self.floor_at_ns) * FLOOR_RISE)
        self.floor_at_ns = arrival_ns
        return transit - self.transit_floor_ns

    def first_arrival_ns(self, item: Item) -> int:
        """When, by the node's clock, the item would have arrived by this track's quickest
        path: what the age of a window built on it is counted from."""
        return item.t_ns + (self.transit_floor_ns or 0)

    def between(self, start_ns: int, end_ns: int) -> list[Item]:
        return [it for it in self.items if start_ns <= it.t_ns < end_ns]

    def trim(self, keep_from_ns: int, max_items: int) -> None:
        while self.items and (self.items[0].t_ns < keep_from_ns or len(self.items) > max_items):
            self.items.popleft()


@dataclass
class Stream:
    """Everything the node knows about one stream, created on its first item and dropped
    whole when it is forgotten: its measurements per modality, its estimators, face track
    and speech-to-text routing (`perception`), its fusion context, its window grid."""

    perception: StreamPerception
    fusion: FusionContext
    tracks: dict[str, Track] = field(default_factory=lambda: {m: Track() for m in MODALITIES})
    next_end_ns: int | None = None
    seq: int = 0


@dataclass
class Cut:
    """A window cut and measured, on its way through fusion and the judging of its lateness
    to its score message (`Windower.score`, the one place a score message is made)."""

    stream: str
    seq: int
    start_ns: int
    end_ns: int
    summary: WindowSummary
    quality: dict[str, dict[str, Any]]
    latency_ms: dict[str, float]
    t_last_frame_ns: int | None
    inputs: FusionInput
    stress: StressResult
    context: FusionContext
    arrived_ns: dict[str, int]
    """Per modality present: when its newest data in the window could first have reached the
    node (its capture time plus the track's quickest transit), by the node's clock."""
    output: FusionOutput | None = None


@dataclass(frozen=True)
class WindowerFigures:
    late_frames: int
    windows: dict[str, int]
    """Score windows cut so far, per stream served now."""


class Windower:
    """Measures incoming media and cuts aligned windows per stream (see module doc)."""

    def __init__(self, cfg: NodeConfig, perception: Perception, fusion: FusionModel,
                 clock: Callable[[], int] | None = None, timings: bool = True) -> None:
        """`clock` is what a window's lateness is judged by once it is fused: the live node's
        wall clock; without it (replay) the `now_ns` given to `process()`. `timings`: the
        score messages carry the node's stage latencies (live; replay has none to give)."""
        self.cfg = cfg
        self.clock = clock
        self.timings = timings
        self.perception = perception
        self.fusion = fusion
        self.hop_ns = int(cfg.hop_s * NS)
        self.window_ns = int(cfg.window_s * NS)
        self.late_ns = int(cfg.late_after_s * NS)
        self.late_frames = 0  # over every stream since the start
        self.streams: dict[str, Stream] = {}

    @classmethod
    def from_config(cls, config: Config, *, live: bool) -> Windower:
        """The core as the node (``live``: speech-to-text in its own process, lateness judged
        by the wall clock) or replay and training (in process, by the data's clock) run it."""
        return cls(config.node, Perception(config.perception, config.asr, asr_process=live),
                   load_fusion(config.perception, live), clock=time.time_ns if live else None,
                   timings=live)

    def insert(self, items: list[Media], now_ns: int,
               faces: Sequence[Face | None] | None = None) -> int:
        """Measure a batch of frames and chunks (from any streams, each in time order) that
        arrived at `now_ns`. Video frames that waited in a queue longer than
        `late_after_s` are skipped unmeasured (a node that fell behind sheds the backlog
        rather than scoring old frames as live) and counted in their track's `late`;
        audio is cheap and always kept. `faces`, one per video frame in `items`: the faces
        already found in them (replay finds them ahead, in a thread of its own); without
        it the face models run here. Returns how many frames were measured."""
        videos = [it for it in items if isinstance(it, VideoFrame)]
        found = dict(zip(map(id, videos), faces)) if faces is not None else None
        frames = [it for it in videos if self._on_time(it, now_ns)]
        measured = set(map(id, frames))
        records = iter(self.perception.measure_frames(
            [(self._stream(f.stream).perception, f) for f in frames],
            None if found is None else [found[id(f)] for f in frames]) if frames else ())
        for item in items:
            if isinstance(item, VideoFrame):
                if id(item) in measured:
                    self._keep(item, "video", next(records), int(NS / item.fps), item.fps,
                               now_ns)
            else:
                self._track(item, "audio").note_transit(item.t_capture_ns, now_ns)
                self._stream(item.stream).perception.insert_audio(item)
                self._keep(item, "audio", measure_chunk(item.samples), item.duration_ns,
                           item.sample_rate, now_ns)
        return len(frames)

    def _stream(self, name: str) -> Stream:
        """The stream's state, made on its first item: the one place a stream begins."""
        if name not in self.streams:
            self.streams[name] = Stream(self.perception.open_stream(name),
                                        self.fusion.new_context())
        return self.streams[name]

    def _track(self, item: Media, modality: str) -> Track:
        return self._stream(item.stream).tracks[modality]

    def _route_utterances(self) -> None:
        """Hand what the speech-to-text worker finished to the streams it belongs to; done
        before windows are cut, the only place the utterances are read."""
        for name, utterance in self.perception.finished_utterances():
            self.hear(name, utterance)

    def hear(self, name: str, utterance: Utterance) -> None:
        """An utterance recognised outside the stream's own speech stage (the node's worker,
        replay's transcriber); a stream forgotten meanwhile has no one to hear it."""
        if name in self.streams:
            self.streams[name].perception.hear(utterance)

    def usual_levels(self, cuts: Sequence[Cut]) -> Baseline:
        """The stress baseline of these windows (of one stream) taken together: every window
        fed to a stress index that never stops collecting, as a live one does in its first
        minute. Replay's whole-recording baseline."""
        index = StressIndex(baseline=Baseline(max_samples=max(len(cuts),
                                                              MAX_BASELINE_SAMPLES)),
                            baseline_s=math.inf)
        for cut in cuts:
            index.update(cut.summary.signals, cut.summary.emotions, cut.quality,
                         cut.end_ns / NS)
        return index.baseline

    def restress(self, cuts: Sequence[Cut], baseline: Baseline) -> list[Cut]:
        """The windows again, their stress index measured against `baseline` from the first
        window on (instead of the one each stream collected as it went), not yet fused
        (`fuse_recording`). Replay's offline baselines."""
        indices: dict[str, StressIndex] = {}
        again = []
        for cut in cuts:
            index = indices.setdefault(cut.stream, StressIndex(
                baseline=Baseline.from_dict(baseline.to_dict())))
            stress = index.update(cut.summary.signals, cut.summary.emotions, cut.quality,
                                  cut.end_ns / NS)
            z, mask = features.stress_input(stress)
            again.append(replace(cut, stress=stress, output=None,
                                 inputs=replace(cut.inputs, stress_z=z, stress_mask=mask)))
        return again

    def fuse_recording(self, cuts: Sequence[Cut]) -> None:
        """Fuse every window of whole recordings, each stream's in order from a fresh
        context (`FusionModel.run_recording`: the one way to run a model that is not causal).
        Replay, after the windows were all cut."""
        for stream in dict.fromkeys(cut.stream for cut in cuts):
            runnable = [cut for cut in cuts
                        if cut.stream == stream and any(cut.inputs.present.values())]
            outputs = self.fusion.run_recording([cut.inputs for cut in runnable])
            for cut, output in zip(runnable, outputs):
                cut.output = output

    def _on_time(self, frame: VideoFrame, now_ns: int) -> bool:
        track = self._track(frame, "video")
        if track.note_transit(frame.t_capture_ns, now_ns) <= self.late_ns:
            return True
        track.note_seq(frame.seq)
        track.late += 1
        self.late_frames += 1
        return False

    def _keep(self, item: VideoFrame | AudioChunk, modality: str,
              record: FrameRecord | ChunkMeasures, duration_ns: int, rate: float,
              now_ns: int) -> None:
        stream = self._stream(item.stream)
        track = stream.tracks[modality]
        end_ns = item.t_capture_ns + duration_ns
        track.rate = rate
        track.note_seq(item.seq)
        track.items.append(Item(item.t_capture_ns, end_ns, record, item.t_sent_ns,
                                item.t_received_ns or now_ns))
        track.last_arrival_ns = now_ns
        track.covered_ns = max(track.covered_ns, end_ns)
        track.trim(track.covered_ns - self.window_ns - 2 * self.hop_ns, max_items=10_000)
        if stream.next_end_ns is None:
            stream.next_end_ns = (item.t_capture_ns // self.hop_ns + 1) * self.hop_ns

    def process(self, now_ns: int, heard_ns: int | None = None) -> list[ScoreMessage]:
        """Every window that is due, oldest first, across all streams, fused in one batch.

        ``heard_ns`` is when the node last looked for messages (default ``now_ns``): states
        and ages are measured to it, so that the time a slow node spends measuring a batch
        does not count as its streams' silence; latencies are measured to ``now_ns``."""
        return [self.score(cut) for cut in self.process_cuts(now_ns, heard_ns)]

    def process_cuts(self, now_ns: int, heard_ns: int | None = None) -> list[Cut]:
        """As `process()`, each window as its `Cut` (measurements, fusion inputs and output)
        before it becomes a score message (`score()`): what replay and training keep."""
        heard_ns = now_ns if heard_ns is None else heard_ns
        self._route_utterances()
        due: list[Cut] = []
        for name in list(self.streams):
            stream = self.streams[name]
            states = {m: t.state(heard_ns, self.cfg) for m, t in stream.tracks.items()}
            if self._forgotten(stream, heard_ns):
                self.forget(name)
                continue
            clock = next((stream.tracks[m].covered_ns for m in MODALITIES
                          if states[m] == "live"), None)
            if clock is None:
                clock = now_ns
                latest_grid = now_ns // self.hop_ns * self.hop_ns
                stream.next_end_ns = max(stream.next_end_ns or 0, latest_grid)
            while stream.next_end_ns is not None and stream.next_end_ns <= clock:
                due.append(self._cut(name, stream, stream.next_end_ns, states, now_ns,
                                     heard_ns))
                stream.next_end_ns += self.hop_ns
        self._fuse(due)
        self._judge_lateness(due, self.clock() if self.clock else now_ns)
        return due

    def _fuse(self, due: list[Cut]) -> None:
        """One fusion call for every window that has something to fuse. A model that is not
        causal fuses nothing here: it waits for the whole recording (`fuse_recording`)."""
        if not self.fusion.causal:
            return
        started = time.perf_counter()
        runnable = [cut for cut in due if any(cut.inputs.present.values())]
        for cut, output in zip(runnable, self.fusion.run([(cut.context, cut.inputs)
                                                           for cut in runnable])):
            cut.output = output
        elapsed_ms = (time.perf_counter() - started) * 1e3
        for cut in runnable:
            cut.latency_ms["fusion"] = elapsed_ms

    def score(self, cut: Cut) -> ScoreMessage:
        """The window's score message, from its measurements, fusion output and lateness."""
        t_start, t_end = cut.start_ns / NS, cut.end_ns / NS
        return ScoreMessage(
            stream=cut.stream, seq=cut.seq, t_start=t_start, t_end=t_end,
            state=_stream_state({m: cut.quality[m]["state"] for m in MODALITIES}),
            signals=cut.summary.signals, quality=cut.quality,
            latency_ms=cut.latency_ms if self.timings else {},
            t_last_frame=None if cut.t_last_frame_ns is None else cut.t_last_frame_ns / NS,
            transcript=[u.for_score() for u in cut.summary.transcript],
            **outputs.fused_fields(cut.output, cut.inputs, cut.stress, self.fusion.expert,
                                   cut.summary.reasons, t_start, t_end),
        )

    def _judge_lateness(self, due: list[Cut], now_ns: int) -> None:
        """A live modality whose newest data in the window is more than `late_after_s` old
        when the window is ready is stale in it: the node fell behind (a backlog of audio, a
        burst of windows after a pause), and what it is about to publish is the past.
        `lag_s` in the modality's quality says how old that data was."""
        for cut in due:
            for modality, arrived_ns in cut.arrived_ns.items():
                quality = cut.quality[modality]
                lag_ns = now_ns - arrived_ns
                quality["lag_s"] = round(lag_ns / NS, 3)
                if quality["state"] == "live" and lag_ns > self.late_ns:
                    quality["state"] = "stale"

    def figures(self) -> WindowerFigures:
        """Late frames over every stream, and the windows cut per stream served now."""
        return WindowerFigures(self.late_frames,
                               {name: stream.seq for name, stream in self.streams.items()})

    def forget(self, name: str) -> None:
        """Drop a stream and all its state (lost too long, or another node serves it now)."""
        stream = self.streams.pop(name, None)
        if stream is not None:
            stream.perception.close()

    def _forgotten(self, stream: Stream, now_ns: int) -> bool:
        arrivals = [t.last_arrival_ns for t in stream.tracks.values()
                    if t.last_arrival_ns is not None]
        return not arrivals or (now_ns - max(arrivals)) / NS > self.cfg.forget_after_s

    def _cut(self, name: str, stream: Stream, end_ns: int, states: dict[str, str],
             now_ns: int, heard_ns: int) -> Cut:
        """The window's measurements, the fusion model's inputs, and when its data arrived."""
        started = time.perf_counter()
        start_ns = end_ns - self.window_ns
        frames = stream.tracks["video"].between(start_ns, end_ns)
        chunks = stream.tracks["audio"].between(start_ns, end_ns)
        states = {m: self._window_state(stream.tracks[m], items, states[m], end_ns)
                  for m, items in (("video", frames), ("audio", chunks))}
        seen = stream.perception.summarize([f.record for f in frames],
                                           [c.record for c in chunks], start_ns, end_ns)
        quality = {
            "video": self._quality(stream.tracks["video"], states["video"], frames, heard_ns,
                                   covered_s=len(frames) / stream.tracks["video"].rate
                                   if frames else 0.0),
            "audio": self._quality(stream.tracks["audio"], states["audio"], chunks, heard_ns,
                                   covered_s=sum(c.end_ns - c.t_ns for c in chunks) / NS),
        }
        quality["face"] = seen.face
        if chunks:
            clipped = sum(c.record.clipped for c in chunks)
            quality["audio"]["clipping"] = clipped / max(1, sum(c.record.n_samples
                                                                 for c in chunks))
        newest = max(frames + chunks, key=lambda it: it.t_ns, default=None)
        latency: dict[str, float] = {}
        if newest is not None:
            latency = {
                "capture_to_send": (newest.t_sent_ns - newest.t_ns) / 1e6,
                "send_to_node": (newest.t_received_ns - newest.t_sent_ns) / 1e6,
                "node_wait": (now_ns - newest.t_received_ns) / 1e6,
            }
        stress = stream.perception.stress(seen, quality, end_ns)
        inputs = stream.perception.fusion_input([(f.t_ns, f.record) for f in frames],
                                                start_ns, end_ns, seen, stress)
        latency["window"] = (time.perf_counter() - started) * 1e3
        last = frames[-1] if frames else newest
        stream.seq += 1
        arrived_ns = {m: stream.tracks[m].first_arrival_ns(max(items, key=lambda it: it.t_ns))
                      for m, items in (("video", frames), ("audio", chunks)) if items}
        return Cut(name, stream.seq, start_ns, end_ns, seen, quality, latency,
                   last.t_ns if last else None, inputs, stress, stream.fusion, arrived_ns)

    def _window_state(self, track: Track, items: list[Item], state: str, end_ns: int) -> str:
        """A live modality whose data in this window stops more than `stale_after_s` before
        the window's end is stale in this window: the track is live again (fresh data just
        came), but what the window holds is the gap before it, or old data that waited in a
        queue. A track whose data starts after this window is left as it is."""
        if state != "live" or not track.items or track.items[0].t_ns >= end_ns:
            return state
        newest_end = max((it.end_ns for it in items), default=end_ns - self.window_ns)
        return "stale" if (end_ns - newest_end) / NS > self.cfg.stale_after_s else state

    def _quality(self, track: Track, state: str, items: list[Item], now_ns: int,
                 covered_s: float) -> dict[str, Any]:
        age = None if track.last_arrival_ns is None else (now_ns - track.last_arrival_ns) / NS
        return {
            "present": bool(items), "state": state,
            "coverage": round(min(1.0, covered_s / self.cfg.window_s), 4),
            "age_s": None if age is None else round(age, 3),
            "gaps": track.gaps, "late": track.late,
        }


def _stream_state(states: dict[str, str]) -> str:
    """live: every modality seen is live; lost: all are lost; stale: anything between."""
    seen = [s for s in states.values() if s != "absent"]
    if seen and all(s == "live" for s in seen):
        return "live"
    if not seen or all(s == "lost" for s in seen):
        return "lost"
    return "stale"
