"""One stream's streaming stages: fed typed, timestamped items, asked what a window says.

Every stage has the same two verbs, as whisper_streaming's `insert_audio_chunk()` /
`process_iter()` do: `insert(item)` takes the stream's next item in capture order (a
`SeenFrame` for the video stages, an `AudioChunk` for the audio ones) and `window(start_ns,
end_ns)` returns what the window [start_ns, end_ns) says, without changing the stage, so
it can be asked at any hop. Times are nanoseconds of capture time, as on the wire; the
estimators inside that work in seconds (rPPG, blinks and head pose) are spoken to in
seconds here, and only here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from wellmon.config import AsrConfig, PerceptionConfig
from wellmon.models.fusion import spec
from wellmon.models.perception import behaviour, rppg
from wellmon.models.perception.asr import Recognizer, Utterance, make_recognizer
from wellmon.models.perception.asr_worker import AsrWorker
from wellmon.models.perception.face import Face
from wellmon.models.perception.records import BehaviourWindow, HeardUtterance, HeardVoice
from wellmon.models.perception.sentiment import sentiment
from wellmon.models.perception.voice import VoiceAnalyzer
from wellmon.streamer.wire.protocol import NS, AudioChunk

ItemT = TypeVar("ItemT", contravariant=True)
ResultT = TypeVar("ResultT", covariant=True)

MIN_PULSE_WINDOW_S = 10.0
TRANSCRIPT_KEEP_S = 120.0


class Stage(Protocol[ItemT, ResultT]):
    """A streaming stage of one stream (see the module doc)."""

    def insert(self, item: ItemT) -> None: ...

    def window(self, start_ns: int, end_ns: int) -> ResultT: ...


@dataclass(frozen=True)
class SeenFrame:
    """A video frame with what the face models found in it: the item every video stage
    takes. `face` is None when face analysis is off."""

    t_ns: int
    image: np.ndarray
    face: Face | None

    @property
    def landmarks(self) -> np.ndarray | None:
        """The face's 468 mesh points, None without a face."""
        return self.face.landmarks if self.face is not None and self.face.present else None


class PulseStage:
    """Heart rate and HRV from the skin's colour (models/perception/rppg.py): the frame's
    skin regions sampled on insert, the window's estimate over the `pulse_window_s` that end
    with it."""

    def __init__(self, cfg: PerceptionConfig) -> None:
        self.skin = rppg.SkinSampler()
        self.estimator = rppg.PulseEstimator(window_s=cfg.pulse_window_s,
                                             min_window_s=MIN_PULSE_WINDOW_S,
                                             snr_margin_db=cfg.pulse_snr_margin_db)

    def insert(self, item: SeenFrame) -> None:
        self.estimator.insert(item.t_ns / NS, self.skin.sample(item.image, item.landmarks))

    def window(self, start_ns: int, end_ns: int) -> rppg.PulseEstimate:
        return self.estimator.estimate(end_ns / NS)


class LearnedPulseStage:
    """Heart rate from the learned rPPG model (perception.rppg_model,
    models/perception/rppg_learned.py), beside the classic methods, with the same gate."""

    def __init__(self, model: Any, cfg: PerceptionConfig) -> None:
        from wellmon.models.perception.rppg_learned import MIN_SNR_DB, LearnedPulse

        self.estimator = LearnedPulse(model, window_s=cfg.pulse_window_s,
                                      min_window_s=MIN_PULSE_WINDOW_S,
                                      min_snr_db=MIN_SNR_DB + cfg.pulse_snr_margin_db)

    def insert(self, item: SeenFrame) -> None:
        box = item.face.box if item.face is not None and item.landmarks is not None else None
        self.estimator.insert(item.t_ns / NS, item.image, box)

    def window(self, start_ns: int, end_ns: int) -> Any:
        return self.estimator.estimate(end_ns / NS)


class BehaviourStage:
    """Blinks, head pose, mouth and brow (models/perception/behaviour.py)."""

    def __init__(self) -> None:
        self.tracker = behaviour.BehaviourTracker()

    def insert(self, item: SeenFrame) -> None:
        height, width = item.image.shape[:2]
        self.tracker.update(item.t_ns / NS, item.landmarks, (width, height), item.image)

    def window(self, start_ns: int, end_ns: int) -> BehaviourWindow:
        start_s, end_s = start_ns / NS, end_ns / NS
        return BehaviourWindow(
            self.tracker.summary(start_s, end_s),
            tuple(f for f in self.tracker.frames if start_s <= f.t_s < end_s),
            tuple(b.closed_s for b in self.tracker.blinks.blinks))


class VoiceStage:
    """Prosody and voice activity (models/perception/voice.py)."""

    def __init__(self) -> None:
        self.analyzer = VoiceAnalyzer()

    def insert(self, item: AudioChunk) -> None:
        self.analyzer.insert(item.t_capture_ns, item.samples)

    def window(self, start_ns: int, end_ns: int) -> HeardVoice:
        return HeardVoice(self.analyzer.window(start_ns, end_ns),
                          self.analyzer.steps(start_ns, end_ns, spec.STEPS))


class SpeechStage:
    """What was said, with each finished utterance's sentiment: speech-to-text inline, or
    in the shared worker process, whose results the node hands back through `hear()`.
    Keeps the last `TRANSCRIPT_KEEP_S` of utterances."""

    def __init__(self, stream: str, asr: AsrConfig, worker: AsrWorker | None) -> None:
        self.stream = stream
        self.worker = worker
        self.recognizer: Recognizer | None = (
            None if worker else make_recognizer(asr.engine, asr.vosk_model))
        self.utterances: deque[HeardUtterance] = deque()

    def insert(self, item: AudioChunk) -> None:
        if self.worker:
            self.worker.insert(self.stream, item.t_capture_ns, item.samples)
        elif self.recognizer is not None:
            self.recognizer.insert_audio_chunk(item.t_capture_ns, item.samples)
            for utterance in self.recognizer.process_iter():
                self.hear(utterance)
        keep_from = item.t_capture_ns - TRANSCRIPT_KEEP_S * NS
        while self.utterances and self.utterances[0].t_end_ns < keep_from:
            self.utterances.popleft()

    def hear(self, u: Utterance) -> None:
        """A recognised utterance; a partial result replaces the previous partial one."""
        if self.utterances and not self.utterances[-1].final:
            self.utterances.pop()
        if u.text:
            self.utterances.append(HeardUtterance(
                u.text, u.final, u.t_start_ns, u.t_end_ns,
                round(sentiment(u.text), 4) if u.final else None))

    def window(self, start_ns: int, end_ns: int) -> list[HeardUtterance]:
        return [u for u in self.utterances if u.overlaps(start_ns, end_ns)]

    def close(self) -> None:
        """The stream is gone: the worker drops its decoder too."""
        if self.worker:
            self.worker.forget(self.stream)
