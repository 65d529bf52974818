"""A stream's perception stages used as the node uses them: typed, timestamped items in with
`insert()`, a window's answer out with `window(start_ns, end_ns)`, asked at any hop."""

from __future__ import annotations

import numpy as np

from wellmon.config import AsrConfig
from wellmon.models.fusion import spec
from wellmon.models.perception.asr import Utterance
from wellmon.models.perception.stages import (
    TRANSCRIPT_KEEP_S,
    BehaviourStage,
    SeenFrame,
    SpeechStage,
    VoiceStage,
)
from wellmon.streamer.wire.protocol import NS, AudioChunk

RATE = 16_000
T0 = 5_000 * NS + 7  # capture clocks are not round


def voiced_chunks(seconds: float, f0_hz: float, chunk_s: float = 0.1) -> list[AudioChunk]:
    """A second of quiet room noise, then a steady vowel-like sound (f0 and four
    harmonics), in 100 ms chunks."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, 6))
    tone[:RATE] = 0.0
    noise = np.random.default_rng(0).normal(0, 30, t.size)
    x = (tone / np.max(np.abs(tone)) * 8000 + noise).astype(np.int16)
    n = int(chunk_s * RATE)
    return [AudioChunk("s", i, T0 + i * n * NS // RATE, x[i * n:(i + 1) * n], RATE)
            for i in range(len(x) // n)]


def test_the_voice_stage_hears_the_pitch_and_asking_twice_changes_nothing() -> None:
    stage = VoiceStage()
    for chunk in voiced_chunks(3.0, 150.0):
        stage.insert(chunk)
    start, end = T0 + 3 * NS // 2, T0 + 3 * NS
    first, again = stage.window(start, end), stage.window(start, end)
    assert first.summary.f0_mean is not None and abs(first.summary.f0_mean - 150.0) < 3.0
    assert first.summary.voice_activity is not None and first.summary.voice_activity > 0.9
    assert first.steps.shape == (spec.STEPS, 5) and np.all(first.steps[:, 0] > 0)
    assert again.summary == first.summary
    np.testing.assert_array_equal(again.steps, first.steps)
    silent = stage.window(T0 + 10 * NS, T0 + 14 * NS)  # nothing captured then
    assert silent.summary.f0_mean is None and "no audio" in silent.summary.reasons["f0_mean"]


def test_the_speech_stage_keeps_the_last_partial_result_then_the_final_one() -> None:
    stage = SpeechStage("s", AsrConfig(engine="off"), worker=None)
    at = T0 + 2 * NS
    stage.hear(Utterance("what a", False, at, at + NS // 2))
    stage.hear(Utterance("what a good", False, at, at + NS))
    assert [u.text for u in stage.window(T0, T0 + 4 * NS)] == ["what a good"]
    stage.hear(Utterance("what a good day", True, at, at + 2 * NS))
    (heard,) = stage.window(T0, T0 + 4 * NS)
    assert heard.final and heard.text == "what a good day" and heard.sentiment > 0
    assert stage.window(T0 + 5 * NS, T0 + 9 * NS) == []  # the utterance ended at T0 + 4 s


def test_the_speech_stage_forgets_utterances_older_than_its_transcript() -> None:
    stage = SpeechStage("s", AsrConfig(engine="off"), worker=None)
    stage.hear(Utterance("good morning", True, T0, T0 + NS))
    silence = np.zeros(RATE // 10, np.int16)
    later = T0 + NS + int(TRANSCRIPT_KEEP_S * NS) + 1
    stage.insert(AudioChunk("s", 0, later - NS, silence, RATE))
    assert [u.text for u in stage.window(T0, later)] == ["good morning"]  # still kept
    stage.insert(AudioChunk("s", 1, later, silence, RATE))
    assert stage.window(T0, later) == []


def test_the_behaviour_stage_reports_no_face_as_such() -> None:
    stage = BehaviourStage()
    blank = np.zeros((48, 64, 3), np.uint8)
    for i in range(30):
        stage.insert(SeenFrame(T0 + i * NS // 15, blank, face=None))
    seen = stage.window(T0, T0 + 2 * NS)
    assert len(seen.frames) == 30 and not any(f.face for f in seen.frames)
    assert seen.summary.face_ratio == 0.0 and seen.summary.blink_rate_per_min is None
    assert seen.closures_s == ()
