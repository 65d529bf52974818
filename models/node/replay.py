"""Offline replay: files through the node's own windowing, as fast as the machine allows.

The items come from the same readers as live capture (unpaced, clock starting at 0, so
times are seconds from the file's start) and reach the windower in the order a live node
would see them: a frame when it is captured, an audio chunk when its last sample is.
Speech-to-text runs beside it in a process of its own (`transcriber.py`), and several files
run in parallel (`replay_many`, one process each). The report of a replay is written by the
command (`wellmon replay`, from dashboard/report), downstream of the scores.

A recording has all of itself at once, so its stress index need not wait for a minute of
"usual" first: by default (`--baseline whole`) the person's usual levels are taken from the
whole recording and every window is then scored against them (`Windower.restress`); the
index then says when the person was more or less stressed than their own average over this
recording, not whether the recording as a whole was stressful (a stored personal baseline,
`--baseline FILE`, says that). `--baseline first:60s` is the live behaviour.

A fusion model that reads the windows after each one (bc-lstm) runs here only, over the
whole recording once every window is cut (`Windower.fuse_recording`).
"""

from __future__ import annotations

import heapq
import json
import math
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from wellmon.config import Config
from wellmon.models.errors import ModelError
from wellmon.models.fusion.features import FusionInput
from wellmon.models.fusion.serving import load_fusion
from wellmon.models.node.outputs import output_file
from wellmon.models.node.transcriber import Transcriber
from wellmon.models.node.windowing import Cut, Windower
from wellmon.models.perception.face import Face, FaceTrack
from wellmon.models.perception.pipeline import Perception
from wellmon.models.stress.index import Baseline
from wellmon.streamer import sources
from wellmon.streamer.wire.protocol import AudioChunk, Media, VideoFrame
from wellmon.streamer.wire.score import ScoreMessage

T = TypeVar("T")
LOOKAHEAD_FRAMES = 30
"""Frames decoded and searched for a face ahead of the ones being measured (2 s at 15
frames/s): enough to even out the two threads' pace, little memory."""


@dataclass(frozen=True)
class BaselineChoice:
    """Whose usual levels a replay's stress index is measured against (module doc)."""

    kind: str  # "whole", "first" or "file"
    seconds: float | None = None
    path: Path | None = None

    def describe(self) -> str:
        if self.kind == "whole":
            return "the whole recording (the person's usual levels over all of it)"
        if self.kind == "first":
            return f"the first {self.seconds:g} s of the recording, as live"
        return f"the stored baseline {self.path}"

    def load(self) -> Baseline:
        """The stored baseline (kind "file"), its file named in any error."""
        assert self.path is not None
        try:
            return Baseline.from_dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            raise ModelError(f"baseline file not found: {self.path}") from None
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ModelError(f"cannot read baseline {self.path}: {exc}") from None


WHOLE = BaselineChoice("whole")


def parse_baseline(text: str) -> BaselineChoice:
    """`whole`, `first:SECONDS` (with or without an `s`) or the path of a baseline file
    (a `Baseline.to_dict()` JSON, as the kiosk keeps per person)."""
    if text == "whole":
        return WHOLE
    if text.startswith("first:"):
        number = text.removeprefix("first:").removesuffix("s")
        try:
            seconds = float(number)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise ModelError(f"--baseline {text}: expected first:SECONDS with a positive "
                             "number, e.g. first:60s")
        return BaselineChoice("first", seconds=seconds)
    path = Path(text)
    if not path.is_file():
        raise ModelError(f"--baseline {text}: expected whole, first:SECONDS or a baseline "
                         f"file, and there is no file {path}")
    return BaselineChoice("file", path=path)


def _arrivals(config: Config, path: str, stream: str, perception: Perception
              ) -> Iterator[tuple[int, Media, Face | None]]:
    """(arrival time ns, item, the face found in it) for both modalities, merged in arrival
    order. The frames are decoded and their faces found ahead, in a thread of their own
    (`_ahead`), while the caller measures the ones before: PyAV and onnxruntime leave
    Python's lock while they work, so the two share the machine's cores."""
    cap = config.capture
    plan = sources.plan(path, stream)
    pacer = sources.Pacer(epoch_ns=0, realtime=False)
    feeds: list[Iterator[tuple[int, Media, Face | None]]] = []
    if plan.video:
        frames = sources.video_frames(plan.video, cap.video_fps, cap.video_max_width,
                                      cap.video_max_height, loop=False, pacer=pacer)
        track = FaceTrack()

        def seen() -> Iterator[tuple[int, Media, Face | None]]:
            for i, (t, image) in enumerate(frames):
                (face,) = perception.find_faces([(track, image)])
                yield t, VideoFrame(stream, i, t, image, cap.video_fps), face

        feeds.append(_ahead(seen(), LOOKAHEAD_FRAMES))
    if plan.audio:
        blocks = sources.audio_blocks(plan.audio, cap.audio_chunk_ms, loop=False, pacer=pacer)
        chunks = (AudioChunk(stream, i, t, x, sources.AUDIO_RATE)
                  for i, (t, x) in enumerate(blocks))
        feeds.append((c.t_capture_ns + c.duration_ns, c, None) for c in chunks)
    return heapq.merge(*feeds, key=lambda entry: entry[0])


def _ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """`items` produced in a thread of its own, at most `depth` ahead of the consumer; an
    exception there is raised here, and a consumer that stops stops the thread."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[str, Any]) -> bool:
        """Put `entry` in the box unless the consumer stopped; whether it went in."""
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer(("error", exc))

    thread = threading.Thread(target=produce, name="wellmon-replay-frames", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def windows(config: Config, path: str, progress: bool = False,
            baseline: BaselineChoice | None = None, transcriber: bool = True
            ) -> Iterator[tuple[ScoreMessage, FusionInput]]:
    """Every window of `path` with its fusion inputs, as the live node would cut them, with
    the stress baseline `baseline` (None: as configured, the live behaviour; training uses
    that). `transcriber`: speech-to-text in its own process (else inline, as before)."""
    if baseline is not None and baseline.kind == "first":
        config = replace(config, perception=replace(config.perception,
                                                    stress_baseline_s=baseline.seconds))
    offline_baseline = baseline is not None and baseline.kind != "first"
    if not offline_baseline and load_fusion(config.perception).causal:
        yield from _one_pass(config, path, progress, transcriber)
        return
    windower, cuts = _cuts(config, path, progress, transcriber)
    if offline_baseline:
        fixed = baseline.load() if baseline.kind == "file" else windower.usual_levels(cuts)
        cuts = windower.restress(cuts, fixed)
    windower.fuse_recording(cuts)
    for cut in cuts:
        yield windower.score(cut), cut.inputs


def _one_pass(config: Config, path: str, progress: bool, transcriber: bool
              ) -> Iterator[tuple[ScoreMessage, FusionInput]]:
    for windower, arrival_ns in _fed(config, path, progress, transcriber):
        for cut in windower.process_cuts(arrival_ns):
            yield windower.score(cut), cut.inputs


def _cuts(config: Config, path: str, progress: bool, transcriber: bool
          ) -> tuple[Windower, list[Cut]]:
    """Every window of the file, measured and fused, kept for `Windower.restress`."""
    cuts: list[Cut] = []
    windower = None
    for windower, arrival_ns in _fed(config, path, progress, transcriber):
        cuts += windower.process_cuts(arrival_ns)
    if windower is None:
        raise ModelError(f"{path}: no frames or audio to replay")
    return windower, cuts


def _fed(config: Config, path: str, progress: bool, transcriber: bool
         ) -> Iterator[tuple[Windower, int]]:
    """The windower fed with the file's items in arrival order: (windower, arrival time)
    after each item. Speech-to-text runs in the transcriber process unless told not to."""
    stream = config.capture.stream or sources.stream_id_for(path)
    asr = config.asr
    speech = transcriber and asr.engine != "off" and sources.plan(path).audio is not None
    windower = Windower.from_config(
        replace(config, asr=replace(asr, engine="off")) if speech else config, live=False)
    worker = Transcriber(path, asr, config.capture.audio_chunk_ms) if speech else None
    duration = duration_s(path)
    bar = tqdm(total=round(duration, 1) if duration else None, unit="s", disable=not progress,
               desc=f"replay {Path(path).name}", bar_format="{l_bar}{bar}| {n:.1f}/{total} s")
    try:
        for arrival_ns, item, face in _arrivals(config, path, stream, windower.perception):
            item.t_received_ns = item.t_sent_ns = arrival_ns
            windower.insert([item], arrival_ns,
                            [face] if isinstance(item, VideoFrame) else None)
            if worker is not None and isinstance(item, AudioChunk):
                for utterance in worker.heard_after(item.seq):
                    windower.hear(stream, utterance)
            yield windower, arrival_ns
            bar.update(max(0.0, min(arrival_ns / 1e9, duration or 0) - bar.n))
    finally:
        bar.close()
        if worker is not None:
            worker.close()
        windower.perception.close()


def outputs_for(inputs: Sequence[str], out: Path) -> list[Path]:
    """`--out x.jsonl` with one input: that file; otherwise `--out` is a folder holding each
    input's NAME.jsonl (NAME its stream id, numbered when two inputs share one)."""
    if out.suffix == ".jsonl":
        if len(inputs) > 1:
            raise ModelError(f"--out {out}: {len(inputs)} inputs need a folder, not one "
                             "JSONL file")
        return [out]
    if out.exists() and not out.is_dir():
        raise ModelError(f"--out {out}: not a folder (give a folder, or a .jsonl file for "
                         "one input)")
    names: list[str] = []
    for spec in inputs:
        name = sources.stream_id_for(spec)
        names.append(name if name not in names else f"{name}-{len(names) + 1}")
    return [out / f"{name}.jsonl" for name in names]


def replay(config: Config, path: str, out: Path, progress: bool = True,
           baseline: BaselineChoice = WHOLE) -> int:
    """Write the score messages of `path` to `out` (JSONL); return how many. The file
    appears only when the whole run succeeded (a failed run leaves an existing one as it
    was), and an unreadable `path` or baseline fails before it is touched."""
    sources.plan(path)
    if baseline.kind == "file":
        baseline.load()
    count = 0
    with output_file(out) as sink:
        for score, _ in windows(config, path, progress, baseline):
            sink.write(json.dumps(score.to_dict(), allow_nan=False) + "\n")
            count += 1
    return count


def replay_many(config: Config, inputs: Sequence[str], out: Path, jobs: int,
                baseline: BaselineChoice = WHOLE, progress: bool = True
                ) -> list[tuple[Path, int]]:
    """Replay every input into `out` (see `outputs_for`), `jobs` files at a time, each in a
    process of its own; (scores file, windows) in the inputs' order."""
    for spec in inputs:
        sources.plan(spec)  # an unreadable input fails before any work, by name
    if baseline.kind == "file":
        baseline.load()
    targets = outputs_for(inputs, out)
    if jobs <= 1 or len(inputs) == 1:
        return [(t, replay(config, spec, t, progress, baseline))
                for spec, t in zip(inputs, targets)]
    counts: dict[int, int] = {}
    with ProcessPoolExecutor(max_workers=min(jobs, len(inputs)),
                             mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(replay, config, spec, t, False, baseline): i
                   for i, (spec, t) in enumerate(zip(inputs, targets))}
        for future in as_completed(futures):
            i = futures[future]
            counts[i] = future.result()
            if progress:
                print(f"replay: {inputs[i]}: {counts[i]} windows", flush=True)
    return [(t, counts[i]) for i, t in enumerate(targets)]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def duration_s(path: str) -> float | None:
    """The file's length in seconds, as its container says (None when it does not)."""
    import av

    plan = sources.plan(path)
    src = plan.video or plan.audio
    with av.open(src.target) as container:
        return container.duration / 1e6 if container.duration else None
