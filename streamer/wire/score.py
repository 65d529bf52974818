"""The score message: the contract between the inference node, the dashboard and users.

One message per stream per hop. Model outputs that do not exist yet are None
(JSON null), never invented. Times `t_start`, `t_end` and `t_last_frame` are
capture-clock seconds since the epoch (seconds from the file's start in
replay). docs/dashboard-api.md documents every key; extend this, do not break it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCORE_VERSION = 1
STATES = ("live", "stale", "lost")


@dataclass
class ScoreMessage:
    stream: str
    seq: int
    t_start: float
    t_end: float
    state: str
    signals: dict[str, Any]  # numbers or None; blink_times is a list of numbers
    quality: dict[str, dict[str, Any]]
    latency_ms: dict[str, float]
    t_last_frame: float | None = None
    t_published: float | None = None
    emotions: dict[str, float] | None = None
    valence: float | None = None
    arousal: float | None = None
    stress: float | None = None
    stress_band: list[float] | None = None
    drivers: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    v: int = SCORE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
