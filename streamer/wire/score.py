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
MAX_INT = 2**53
"""Integers beyond this are refused: a float cannot hold them, and the dashboard does
arithmetic with every time it reads."""


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


def shape_problem(score: dict[str, Any]) -> str | None:
    """What is wrong with a received score message's shape, or None: every field the
    dashboard and the kiosk check read has the type this contract gives it, so that a
    malformed message is refused at the edge instead of failing a consumer. Numbers are
    finite (the JSON reader refuses NaN and infinities)."""
    if not _is_int(score.get("seq")):
        return "seq"
    if score.get("state") not in STATES:
        return "state"
    for key in ("t_start", "t_end"):
        if not is_number(score.get(key)):
            return key
    for key in ("t_last_frame", "t_published", "valence", "arousal", "stress"):
        if not _optional(score.get(key), is_number):
            return key
    checks = {
        "signals": lambda v: _is_map(v, lambda k, x: is_number(x) or x is None or (
            k == "blink_times" and isinstance(x, list) and all(map(is_number, x)))),
        "emotions": lambda v: v is None or _is_map(v, lambda k, x: is_number(x)),
        "quality": lambda v: _is_map(v, lambda k, x: _is_map(x, _quality_value)),
        "latency_ms": lambda v: _is_map(v, lambda k, x: is_number(x)),
        "reasons": lambda v: _is_map(v, lambda k, x: isinstance(x, str)),
        "drivers": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        "transcript": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        "stress_band": lambda v: v is None or (isinstance(v, list)
                                               and all(map(is_number, v))),
        "v": _is_int,
    }
    for key, check in checks.items():
        if key in score and not check(score[key]):
            return key
    return None


def is_number(value: Any) -> bool:
    """A number as the contract has it: int or float, not a bool, within a float's exact
    integers."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and abs(value) <= MAX_INT)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and is_number(value)


def _optional(value: Any, check: Any) -> bool:
    return value is None or check(value)


def _is_map(value: Any, check: Any) -> bool:
    return isinstance(value, dict) and all(check(k, v) for k, v in value.items())


def _quality_value(key: str, value: Any) -> bool:
    """A modality's quality: numbers, flags and None; its state is a word."""
    if key == "state":
        return isinstance(value, str)
    return value is None or isinstance(value, bool) or is_number(value)
