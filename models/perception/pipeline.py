"""Perception: per-frame and per-chunk features, and what a window of them says.

One code path for live, replay and training. `measure_frames()` runs the face
pipeline batched across every stream's waiting frames and turns each frame
into a small record (brightness, motion, face presence, expression, eye
aspect ratio, head pose, mouth, brows, skin colour); the frames themselves
are not kept. Per stream, streaming estimators follow the records and the
audio: pulse (rPPG), blinks, voice prosody and speech-to-text.
`summarize()` turns one window of records into the score message's fields;
a value that cannot be given is None and `reasons` says why.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wellmon.config import AsrConfig, PerceptionConfig
from wellmon.models.fusion import features, spec
from wellmon.models.fusion.features import FusionInput
from wellmon.models.perception import behaviour, rppg
from wellmon.models.perception.asr import Recognizer, Utterance, make_recognizer
from wellmon.models.perception.asr_worker import AsrWorker
from wellmon.models.perception.face import EMOTIONS, FacePipeline
from wellmon.models.perception.runtime import choose_providers
from wellmon.models.perception.sentiment import sentiment
from wellmon.models.perception.signals import measure_frame
from wellmon.models.perception.voice import VoiceAnalyzer
from wellmon.models.stress.index import StressIndex, StressResult
from wellmon.streamer.wire.protocol import AudioChunk, VideoFrame

NS = 1_000_000_000
TRANSCRIPT_KEEP_S = 120.0


@dataclass
class StreamPerception:
    """The streaming estimators of one stream."""

    pulse: rppg.PulseEstimator
    skin: rppg.SkinSampler
    behaviour: behaviour.BehaviourTracker
    voice: VoiceAnalyzer
    recognizer: Recognizer | None
    stress: StressIndex
    thumbnail: np.ndarray | None = None
    utterances: deque[dict[str, Any]] = field(default_factory=deque)
    learned: Any = None  # rppg_learned.LearnedPulse when perception.rppg_model is set


class Perception:
    """`asr_process`: run speech-to-text in a worker process (live, so that decoding never
    delays a window) or inline (replay, so that every utterance lands in its window)."""

    def __init__(self, cfg: PerceptionConfig, asr: AsrConfig, asr_process: bool = False) -> None:
        self.cfg = cfg
        self.asr = asr
        self.asr_worker = (AsrWorker(asr.engine, asr.vosk_model)
                           if asr_process and asr.engine != "off" else None)
        self.faces = (FacePipeline(choose_providers(cfg.providers), cfg.threads,
                                   detect_every=cfg.detect_every,
                                   min_detection=cfg.min_face_score)
                      if cfg.face else None)
        self.streams: dict[str, StreamPerception] = {}
        self.learned_model = None
        if cfg.rppg_model:
            from wellmon.models.perception.rppg_learned import LearnedModel, resolve

            self.learned_model = LearnedModel(resolve(cfg.rppg_model),
                                              choose_providers(cfg.providers), cfg.threads)

    @property
    def provider(self) -> str:
        return self.faces.provider if self.faces else "none (face analysis off)"

    def stream(self, name: str) -> StreamPerception:
        if name not in self.streams:
            self.streams[name] = StreamPerception(
                pulse=rppg.PulseEstimator(window_s=self.cfg.pulse_window_s,
                                          min_window_s=MIN_PULSE_WINDOW_S,
                                          snr_margin_db=self.cfg.pulse_snr_margin_db),
                skin=rppg.SkinSampler(),
                behaviour=behaviour.BehaviourTracker(),
                voice=VoiceAnalyzer(),
                recognizer=(None if self.asr_worker
                            else make_recognizer(self.asr.engine, self.asr.vosk_model)),
                stress=StressIndex(baseline_s=self.cfg.stress_baseline_s),
            )
            if self.learned_model is not None:
                from wellmon.models.perception.rppg_learned import MIN_SNR_DB, LearnedPulse

                self.streams[name].learned = LearnedPulse(
                    self.learned_model, window_s=self.cfg.pulse_window_s,
                    min_window_s=MIN_PULSE_WINDOW_S,
                    min_snr_db=MIN_SNR_DB + self.cfg.pulse_snr_margin_db)
        return self.streams[name]

    def forget(self, name: str) -> None:
        self.streams.pop(name, None)
        if self.faces:
            self.faces.forget(name)
        if self.asr_worker:
            self.asr_worker.forget(name)

    def close(self) -> None:
        if self.asr_worker:
            self.asr_worker.close()

    def measure_frames(self, frames: list[VideoFrame]) -> list[dict[str, Any]]:
        """A feature record per frame; the face models see all frames in one batch."""
        faces = (self.faces.process([(f.stream, f.image) for f in frames]) if self.faces
                 else [None] * len(frames))
        records = []
        for frame, face in zip(frames, faces):
            state = self.stream(frame.stream)
            basic = measure_frame(frame.image, state.thumbnail)
            state.thumbnail = basic.thumbnail
            t_s = frame.t_capture_ns / NS
            record: dict[str, Any] = {"brightness": basic.brightness, "motion": basic.motion,
                                      "face": bool(face and face.present)}
            points = face.landmarks if face is not None and face.present else None
            if points is not None:
                record.update(face_confidence=face.confidence, expression=face.expression.tolist())
            state.pulse.insert(t_s, state.skin.sample(frame.image, points))
            if state.learned is not None:
                state.learned.insert(t_s, frame.image, face.box if points is not None else None)
            seen = state.behaviour.update(t_s, points, (frame.image.shape[1],
                                                         frame.image.shape[0]), frame.image)
            if seen.face:
                record.update(ear=seen.ear, yaw=seen.yaw_deg, pitch=seen.pitch_deg,
                              roll=seen.roll_deg, mouth_open=seen.mouth_open,
                              brow_lowering=seen.brow_lowering)
            records.append(record)
        return records

    def insert_audio(self, chunk: AudioChunk) -> None:
        state = self.stream(chunk.stream)
        state.voice.insert(chunk.t_capture_ns, chunk.samples)
        if self.asr_worker:
            self.asr_worker.insert(chunk.stream, chunk.t_capture_ns, chunk.samples)
            self._collect_utterances()
        elif state.recognizer is not None:
            state.recognizer.insert_audio_chunk(chunk.t_capture_ns, chunk.samples)
            for utterance in state.recognizer.process_iter():
                _merge_utterance(state.utterances, utterance)
        keep_from = chunk.t_capture_ns - TRANSCRIPT_KEEP_S * NS
        while state.utterances and state.utterances[0]["t_end_ns"] < keep_from:
            state.utterances.popleft()

    def stress(self, name: str, signals: dict[str, Any], emotions: dict[str, float] | None,
               quality: dict[str, Any], end_ns: int) -> StressResult:
        """The window's expert stress index, or why not (models/stress/index.py): its gate and
        z-scores are the fusion model's stress input."""
        return self.stream(name).stress.update(signals, emotions, quality, end_ns / NS)

    def fusion_input(self, name: str, frames: list[tuple[float, dict[str, Any]]],
                     start_ns: int, end_ns: int, signals: dict[str, Any],
                     transcript: list[dict[str, Any]], stress: StressResult) -> FusionInput:
        """The fusion model's inputs for one window (frames: capture time in s, record)."""
        state = self.stream(name)
        start_s, end_s = start_ns / NS, end_ns / NS
        blinks = [b.closed_s for b in state.behaviour.blinks.blinks]
        visual, visual_mask = features.visual_steps(frames, blinks, start_s, end_s)
        audio, audio_mask = features.audio_steps(state.voice.steps(start_ns, end_ns,
                                                                   spec.STEPS))
        text, text_mask = features.text_steps(transcript, start_s, end_s)
        physio, physio_mask = features.physio_vector(signals)
        stress_z, stress_mask = (features.stress_vector(stress) if stress.value is not None
                                 else features.no_stress())
        return FusionInput(visual, visual_mask, audio, audio_mask, text, text_mask, physio,
                           physio_mask, stress_z, stress_mask)

    def _collect_utterances(self) -> None:
        """What the speech-to-text worker has finished since the last look, per stream."""
        for stream, utterance in self.asr_worker.results():
            if stream in self.streams:
                _merge_utterance(self.streams[stream].utterances, utterance)

    def summarize(self, name: str, frames: list[dict[str, Any]], start_ns: int,
                  end_ns: int) -> dict[str, Any]:
        """The window's emotions, signals, face quality, transcript and reasons for nulls."""
        if self.asr_worker:
            self._collect_utterances()
        state = self.stream(name)
        reasons: dict[str, str] = {}
        with_face = [f for f in frames if f["face"]]
        emotions = None
        if with_face:
            weights = np.array([f["face_confidence"] for f in with_face])
            probs = np.average(np.array([f["expression"] for f in with_face]), axis=0,
                               weights=weights)
            emotions = {label: round(float(p), 4) for label, p in zip(EMOTIONS, probs)}
        elif self.faces is None:
            reasons["emotions"] = "face analysis is off (perception.face)"
        else:
            reasons["emotions"] = "no face in the window" if frames else "no video"
        pulse = state.pulse.estimate(end_ns / NS)
        seen = state.behaviour.summary(start_ns / NS, end_ns / NS)
        voice = state.voice.window(start_ns, end_ns)
        signals: dict[str, Any] = {
            "heart_rate": pulse.heart_rate_bpm, "hrv_rmssd": pulse.hrv_rmssd_ms,
            "hrv_sdnn": pulse.hrv_sdnn_ms, "pulse_snr_db": pulse.quality,
            "blink_rate": seen.blink_rate_per_min,
            "blink_count": seen.blink_count if with_face else None,
            "blink_times": [round(t, 3) for t in seen.blink_times_s] if with_face else None,
            "yaw": seen.yaw_mean_deg, "pitch": seen.pitch_mean_deg, "roll": seen.roll_mean_deg,
            "looking_away": seen.looking_away_ratio, "mouth_open": seen.mouth_open_mean,
            "brow_lowering": seen.brow_lowering_mean,
            **{name: getattr(voice, attr) for name, attr in VOICE_SIGNALS.items()},
        }
        if pulse.reason:
            reasons["heart_rate"] = pulse.reason
        if state.learned is not None:  # perception.rppg_model (models/perception/rppg_learned.py)
            learned = state.learned.estimate(end_ns / NS)
            signals.update(heart_rate_learned=learned.heart_rate_bpm,
                           pulse_learned_snr_db=learned.quality)
            if learned.reason:
                reasons["heart_rate_learned"] = learned.reason
        if pulse.hrv_reason:
            reasons["hrv_rmssd"] = reasons["hrv_sdnn"] = pulse.hrv_reason
        if seen.blink_rate_per_min is None:
            reasons["blink_rate"] = "too little time with a face in the last minute"
        if not with_face:
            for key in ("blink_count", "blink_times", "yaw", "pitch", "roll", "looking_away",
                        "mouth_open", "brow_lowering"):
                reasons[key] = reasons["emotions"]
        for name, attr in VOICE_SIGNALS.items():
            if attr in voice.reasons:
                reasons.setdefault(name, voice.reasons[attr])
        transcript = [{k: v for k, v in u.items() if not k.endswith("_ns")} | {
            "t_start": u["t_start_ns"] / NS, "t_end": u["t_end_ns"] / NS}
            for u in state.utterances if u["t_end_ns"] > start_ns and u["t_start_ns"] < end_ns]
        finals = [u["sentiment"] for u in transcript if u["final"]]
        signals["sentiment"] = float(np.mean(finals)) if finals else None
        if not finals:
            reasons["sentiment"] = "no finished utterance in the window"
        face_quality = {"present": round(len(with_face) / len(frames), 4) if frames else 0.0,
                        "confidence": round(float(np.mean([f["face_confidence"]
                                                           for f in with_face])), 4)
                        if with_face else None}
        return {"emotions": emotions, "signals": signals, "face": face_quality,
                "transcript": transcript, "reasons": reasons}


MIN_PULSE_WINDOW_S = 10.0
# score message signal name → VoiceWindow attribute
VOICE_SIGNALS = {"f0_mean": "f0_mean", "f0_std": "f0_std", "jitter": "jitter",
                 "shimmer": "shimmer", "hnr": "hnr", "speech_rate": "speech_rate",
                 "pause_ratio": "pause_ratio", "voice_activity": "voice_activity",
                 "voice_energy_db": "energy_db", "voiced_s": "voiced_s"}


def _merge_utterance(utterances: deque[dict[str, Any]], u: Utterance) -> None:
    """A partial result replaces the previous partial of the same utterance."""
    record = {"text": u.text, "final": u.final, "t_start_ns": u.t_start_ns,
              "t_end_ns": u.t_end_ns,
              "sentiment": round(sentiment(u.text), 4) if u.final and u.text else None}
    if utterances and not utterances[-1]["final"]:
        utterances.pop()
    if u.text:
        utterances.append(record)
