"""The typed records perception hands on: what a frame showed, what was said, what a
window of them says. Times are nanoseconds of capture time, as on the wire; a record
turns into the score message's seconds only when the message is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wellmon.models.perception.behaviour import FrameBehaviour
from wellmon.streamer.wire.protocol import NS


@dataclass
class FrameRecord:
    """One analysed frame, reduced to numbers (the frame itself is not kept). The face
    fields are None when no face was found; `behaviour` is what the blink and head tracker
    measured in the frame (its fields None where the mesh could not be read)."""

    brightness: float
    motion: float | None
    face: bool
    face_confidence: float | None = None
    expression: list[float] | None = None  # probabilities in face.EMOTIONS order
    behaviour: FrameBehaviour | None = None


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


@dataclass
class WindowSummary:
    """What one window of a stream's records says: the score message's emotions, signals,
    face quality, transcript and the reasons for its nulls."""

    emotions: dict[str, float] | None
    signals: dict[str, Any]
    face: dict[str, Any]
    transcript: list[HeardUtterance] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
