"""Perception: per-frame and per-chunk features, and what a window of them says.

One code path for live, replay and training. `Perception` holds what all streams share
(the face models, the speech-to-text worker); `Perception.open_stream()` gives one
stream's `StreamPerception`, which owns that stream's streaming stages (pulse, learned
pulse, blinks and head, voice, speech; models/perception/stages.py), its face track and
its stress baseline. `measure_frames()` runs the face models batched across every
stream's waiting frames, feeds each frame to its stream's video stages and turns it into
a `FrameRecord`; the frames themselves are not kept. `StreamPerception.summarize()` asks
every stage for the window and turns the answers into a `WindowSummary`: the score
message's fields, a value that cannot be given None and `reasons` saying why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wellmon.config import AsrConfig, PerceptionConfig
from wellmon.models.fusion import features
from wellmon.models.fusion.features import FusionInput
from wellmon.models.perception.asr import Utterance
from wellmon.models.perception.asr_worker import AsrWorker
from wellmon.models.perception.face import EMOTIONS, Face, FacePipeline, FaceTrack
from wellmon.models.perception.records import FrameRecord, WindowSummary
from wellmon.models.perception.runtime import choose_providers
from wellmon.models.perception.signals import ChunkMeasures, level_db, measure_frame
from wellmon.models.perception.stages import (
    BehaviourStage,
    LearnedPulseStage,
    PulseStage,
    SeenFrame,
    SpeechStage,
    Stage,
    VoiceStage,
)
from wellmon.models.stress.index import StressIndex, StressResult
from wellmon.streamer.wire.protocol import NS, AudioChunk, VideoFrame


class StreamPerception:
    """Everything perception knows about one stream; dropped with it (`close()`)."""

    def __init__(self, name: str, cfg: PerceptionConfig, asr: AsrConfig,
                 asr_worker: AsrWorker | None, face_analysis: bool,
                 learned_model: Any = None) -> None:
        self.name = name
        self.face_analysis = face_analysis
        self.face_track = FaceTrack()
        self.thumbnail: np.ndarray | None = None
        self.pulse = PulseStage(cfg)
        self.learned = LearnedPulseStage(learned_model, cfg) if learned_model else None
        self.behaviour = BehaviourStage()
        self.video_stages: list[Stage[SeenFrame, Any]] = [
            stage for stage in (self.pulse, self.learned, self.behaviour) if stage is not None]
        self.voice = VoiceStage()
        self.speech = SpeechStage(name, asr, asr_worker)
        self.stress_index = StressIndex(baseline_s=cfg.stress_baseline_s)

    def close(self) -> None:
        """The stream is gone: the speech-to-text worker drops its decoder too."""
        self.speech.close()

    def record(self, frame: VideoFrame, face: Face | None) -> FrameRecord:
        """The frame's record; the video stages take the frame in."""
        basic = measure_frame(frame.image, self.thumbnail)
        self.thumbnail = basic.thumbnail
        seen = SeenFrame(frame.t_capture_ns, frame.image, face)
        for stage in self.video_stages:
            stage.insert(seen)
        if seen.landmarks is None or face is None:
            return FrameRecord(basic.brightness, basic.motion, face=False)
        return FrameRecord(basic.brightness, basic.motion, face=True,
                           face_confidence=face.confidence,
                           expression=face.expression.tolist())

    def insert_audio(self, chunk: AudioChunk) -> None:
        """The audio stages take the chunk in (speech-to-text inline or in the worker, whose
        results come back through `hear()`)."""
        self.voice.insert(chunk)
        self.speech.insert(chunk)

    def hear(self, u: Utterance) -> None:
        """An utterance the speech-to-text worker recognised in this stream."""
        self.speech.hear(u)

    def summarize(self, frames: list[FrameRecord], chunks: list[ChunkMeasures],
                  start_ns: int, end_ns: int) -> WindowSummary:
        """The window's emotions, signals, face quality, transcript and reasons for nulls."""
        reasons: dict[str, str] = {}
        with_face = [f for f in frames if f.face]
        emotions = None
        if with_face:
            weights = np.array([f.face_confidence for f in with_face])
            probs = np.average(np.array([f.expression for f in with_face]), axis=0,
                               weights=weights)
            emotions = {label: round(float(p), 4) for label, p in zip(EMOTIONS, probs)}
        elif not self.face_analysis:
            reasons["emotions"] = "face analysis is off (perception.face)"
        else:
            reasons["emotions"] = "no face in the window" if frames else "no video"
        pulse = self.pulse.window(start_ns, end_ns)
        seen = self.behaviour.window(start_ns, end_ns)
        heard = self.voice.window(start_ns, end_ns)
        voice = heard.summary
        motion = [f.motion for f in frames if f.motion is not None]
        signals: dict[str, Any] = {
            "brightness": _mean([f.brightness for f in frames]), "motion": _mean(motion),
            "audio_level_db": level_db(sum(c.sum_squares for c in chunks),
                                       sum(c.n_samples for c in chunks)),
            "heart_rate": pulse.heart_rate_bpm, "hrv_rmssd": pulse.hrv_rmssd_ms,
            "hrv_sdnn": pulse.hrv_sdnn_ms, "pulse_snr_db": pulse.quality,
            "blink_rate": seen.summary.blink_rate_per_min,
            "blink_count": seen.summary.blink_count if with_face else None,
            "blink_times": ([round(t, 3) for t in seen.summary.blink_times_s]
                            if with_face else None),
            "yaw": seen.summary.yaw_mean_deg, "pitch": seen.summary.pitch_mean_deg,
            "roll": seen.summary.roll_mean_deg,
            "looking_away": seen.summary.looking_away_ratio,
            "mouth_open": seen.summary.mouth_open_mean,
            "brow_lowering": seen.summary.brow_lowering_mean,
            **{name: getattr(voice, attr) for name, attr in VOICE_SIGNALS.items()},
        }
        if pulse.reason:
            reasons["heart_rate"] = pulse.reason
        if self.learned is not None:  # perception.rppg_model (models/perception/rppg_learned.py)
            learned = self.learned.window(start_ns, end_ns)
            signals.update(heart_rate_learned=learned.heart_rate_bpm,
                           pulse_learned_snr_db=learned.quality)
            if learned.reason:
                reasons["heart_rate_learned"] = learned.reason
        if pulse.hrv_reason:
            reasons["hrv_rmssd"] = reasons["hrv_sdnn"] = pulse.hrv_reason
        if seen.summary.blink_rate_per_min is None:
            reasons["blink_rate"] = "too little time with a face in the last minute"
        if not with_face:
            for key in ("blink_count", "blink_times", "yaw", "pitch", "roll", "looking_away",
                        "mouth_open", "brow_lowering"):
                reasons[key] = reasons["emotions"]
        for name, attr in VOICE_SIGNALS.items():
            if attr in voice.reasons:
                reasons.setdefault(name, voice.reasons[attr])
        transcript = self.speech.window(start_ns, end_ns)
        finals = [u.sentiment for u in transcript if u.final]
        signals["sentiment"] = float(np.mean(finals)) if finals else None
        if not finals:
            reasons["sentiment"] = "no finished utterance in the window"
        face_quality = {"present": round(len(with_face) / len(frames), 4) if frames else 0.0,
                        "confidence": round(float(np.mean([f.face_confidence
                                                           for f in with_face])), 4)
                        if with_face else None}
        return WindowSummary(emotions, signals, face_quality, transcript, reasons, seen, heard)

    def stress(self, summary: WindowSummary, quality: dict[str, Any],
               end_ns: int) -> StressResult:
        """The window's expert stress index, or why not (models/stress/index.py): its gate and
        z-scores are the fusion model's stress input."""
        return self.stress_index.update(summary.signals, summary.emotions, quality,
                                        end_ns / NS)

    def fusion_input(self, frames: list[tuple[int, FrameRecord]], start_ns: int,
                     end_ns: int, summary: WindowSummary, stress: StressResult) -> FusionInput:
        """The fusion model's inputs for one window (frames: capture time in ns, record;
        `summary`: this window's, from `summarize()`)."""
        start_s, end_s = start_ns / NS, end_ns / NS
        visual, visual_mask = features.visual_steps([(t_ns / NS, r) for t_ns, r in frames],
                                                    summary.behaviour.frames,
                                                    summary.behaviour.closures_s,
                                                    start_s, end_s)
        audio, audio_mask = features.audio_steps(summary.voice.steps)
        text, text_mask = features.text_steps(summary.transcript, start_s, end_s)
        physio, physio_mask = features.physio_vector(summary.signals)
        stress_z, stress_mask = features.stress_input(stress)
        return FusionInput(visual, visual_mask, audio, audio_mask, text, text_mask, physio,
                           physio_mask, stress_z, stress_mask)


class Perception:
    """What every stream shares: the face models, the learned pulse model, the speech-to-text
    worker. `asr_process`: run speech-to-text in a worker process (live, so that decoding
    never delays a window) or inline (replay, so that every utterance lands in its window)."""

    def __init__(self, cfg: PerceptionConfig, asr: AsrConfig, asr_process: bool = False) -> None:
        self.cfg = cfg
        self.asr = asr
        self.asr_worker = (AsrWorker(asr.engine, asr.vosk_model)
                           if asr_process and asr.engine != "off" else None)
        self.faces = (FacePipeline(choose_providers(cfg.providers), cfg.threads,
                                   detect_every=cfg.detect_every,
                                   min_detection=cfg.min_face_score)
                      if cfg.face else None)
        self.learned_model = None
        if cfg.rppg_model:
            from wellmon.models.perception.rppg_learned import LearnedModel, resolve

            self.learned_model = LearnedModel(resolve(cfg.rppg_model),
                                              choose_providers(cfg.providers), cfg.threads)

    @property
    def provider(self) -> str:
        return self.faces.provider if self.faces else "none (face analysis off)"

    def open_stream(self, name: str) -> StreamPerception:
        """A new stream's perception; the caller owns it and closes it when the stream goes."""
        return StreamPerception(name, self.cfg, self.asr, self.asr_worker,
                                face_analysis=self.faces is not None,
                                learned_model=self.learned_model)

    def close(self) -> None:
        if self.asr_worker:
            self.asr_worker.close()

    def measure_frames(self, frames: list[tuple[StreamPerception, VideoFrame]],
                       faces: list[Face | None] | None = None) -> list[FrameRecord]:
        """A record per (stream, frame); the face models see all frames in one batch, unless
        `faces` gives what they found in each frame already (`find_faces`)."""
        if faces is None:
            faces = self.find_faces([(stream.face_track, frame.image)
                                     for stream, frame in frames])
        return [stream.record(frame, face) for (stream, frame), face in zip(frames, faces)]

    def find_faces(self, images: list[tuple[FaceTrack, np.ndarray]]) -> list[Face | None]:
        """The face models on a batch of (stream's face track, frame), each track moved on
        to its frame's face; None per frame when face analysis is off. Replay runs this
        ahead of `measure_frames`, in a thread of its own, with a track of its own."""
        if self.faces is None:
            return [None] * len(images)
        return list(self.faces.process(images))

    def finished_utterances(self) -> list[tuple[str, Utterance]]:
        """What the speech-to-text worker has finished since the last look (stream, result);
        nothing when speech-to-text runs inline."""
        return self.asr_worker.results() if self.asr_worker else []


# score message signal name → VoiceWindow attribute
VOICE_SIGNALS = {"f0_mean": "f0_mean", "f0_std": "f0_std", "jitter": "jitter",
                 "shimmer": "shimmer", "hnr": "hnr", "speech_rate": "speech_rate",
                 "pause_ratio": "pause_ratio", "voice_activity": "voice_activity",
                 "voice_energy_db": "energy_db", "voiced_s": "voiced_s"}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None

