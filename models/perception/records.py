"""The typed records perception hands on: what a frame showed, what was said, what a
window of them says. Times are nanoseconds of capture time, as on the wire; a record
turns into the score message's seconds only when the message is written. The one
exception is `BehaviourWindow`, the blink and head tracker's own answer, which keeps that
tracker's seconds (the same capture clock, divided by `NS`) for the fusion features, which
work in seconds too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wellmon.models.perception.behaviour import BehaviourSummary, FrameBehaviour
from wellmon.models.perception.voice import VoiceWindow
from wellmon.streamer.wire.protocol import NS


@dataclass
class FrameRecord:
    """One analysed frame, reduced to numbers (the frame itself is not kept). The face
    fields are None when no face was found. What the blink and head tracker measured in
    the frame is the behaviour stage's (`BehaviourWindow.frames`)."""

    brightness: float
    motion: float | None
    face: bool
    face_confidence: float | None = None
    expression: list[float] | None = None  # probabilities in face.EMOTIONS order


@dataclass
class HeardUtterance:
    """A recognised stretch of speech with its sentiment (finished utterances only)."""

    text: str
    final: bool
    t_start_ns: int
    t_end_ns: int
    sentiment: float | None

    def overlaps(self, start_ns: int, end_ns: int) -> bool:
        return self.t_end_ns > start_ns and self.t_start_ns < end_ns

    def for_score(self) -> dict[str, Any]:
        """As the score message's transcript shows it (docs/dashboard-api.md)."""
        return {"text": self.text, "final": self.final, "sentiment": self.sentiment,
                "t_start": self.t_start_ns / NS, "t_end": self.t_end_ns / NS}


@dataclass(frozen=True)
class BehaviourWindow:
    """What the blink and head tracker says of a window: its aggregates, its frames' measures
    (the fusion model's per-step features) and when the eyes were closed in each blink it
    has seen (the fusion model counts blinks per step by their closure)."""

    summary: BehaviourSummary
    frames: tuple[FrameBehaviour, ...]
    closures_s: tuple[float, ...]


@dataclass(frozen=True)
class HeardVoice:
    """What the voice analyser says of a window: its prosody and its per-step rows (the
    fusion model's audio sequence, `VoiceAnalyzer.steps()`)."""

    summary: VoiceWindow
    steps: np.ndarray


@dataclass
class WindowSummary:
    """What one window of a stream's records says: the score message's emotions, signals,
    face quality, transcript and the reasons for its nulls."""

    emotions: dict[str, float] | None
    signals: dict[str, Any]
    face: dict[str, Any]
    transcript: list[HeardUtterance]
    reasons: dict[str, str]
    behaviour: BehaviourWindow
    """The behaviour stage's answer, which the fusion model's visual features read too."""
    voice: HeardVoice
    """The voice stage's answer, which the fusion model's audio features read too."""
