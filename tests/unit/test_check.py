"""The kiosk check's verdict (models/stress/verdict.py) on synthetic windows and histories."""

from __future__ import annotations

import numpy as np

from wellmon.models.stress import verdict as check

NEUTRAL = {"angry": 0.01, "disgust": 0.01, "fear": 0.01, "happy": 0.05, "sad": 0.02,
           "surprise": 0.02, "neutral": 0.88}


def windows(n: int = 80, face: float = 1.0, brightness: float = 0.45, seed: int = 0,
            **shift: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        signals = {"heart_rate": 70 + rng.normal(0, 1), "hrv_rmssd": 45 + rng.normal(0, 2),
                   "blink_rate": 15.0, "f0_mean": 120 + rng.normal(0, 2), "jitter": 1.0,
                   "brightness": brightness}
        for name, delta in shift.items():
            signals[name] += delta
        out.append({"t_end": 100 + 0.5 * k, "signals": signals, "emotions": NEUTRAL,
                    "quality": {"face": {"present": face}}})
    return out


def history(n: int, seed: int = 10) -> list[dict]:
    """n earlier checks of a calm person, newest first, with day-to-day variation."""
    rng = np.random.default_rng(seed)
    return [{"id": k, "started_at": 1e9 - k * 86400, "result": check.result(
        windows(seed=seed + k, heart_rate=rng.normal(0, 2), f0_mean=rng.normal(0, 3)),
        [])} for k in range(n)]


def test_the_first_checks_only_build_the_usual_range() -> None:
    for n in range(check.MIN_CHECKS):
        result = check.result(windows(), history(n))
        assert result["verdict"] == "inconclusive" and result["stress"] is None
        assert f"this is check {n + 1} of the first {check.MIN_CHECKS}" in result["reason"]
        assert result["summary"]["heart_rate"] is not None  # stored for the next checks


def test_a_calm_check_is_within_the_usual_range() -> None:
    result = check.result(windows(seed=99), history(5))
    assert result["verdict"] == "usual" and result["label"] == "Within your usual range"
    assert 25 < result["stress"] < check.ABOVE_USUAL
    assert result["checks_in_baseline"] == 5 and result["note"].endswith("not a diagnosis.")


def test_raised_pulse_and_pitch_are_above_the_usual_range() -> None:
    result = check.result(windows(seed=99, heart_rate=15.0, f0_mean=25.0), history(5))
    assert result["verdict"] == "above" and result["stress"] >= check.ABOVE_USUAL
    assert {d["input"] for d in result["drivers"][:2]} == {"heart_rate", "f0_mean"}
    assert result["advice"]


def test_poor_input_is_inconclusive_with_what_to_do() -> None:
    dark = check.result(windows(brightness=0.05), history(5))
    assert dark["verdict"] == "inconclusive" and dark["reason"] == "too dark to see the face well"
    assert "light" in dark["advice"]
    away = check.result(windows(face=0.2), history(5))
    assert away["reason"] == "no face for 80% of the check" and "camera" in away["advice"]
    quiet = windows()
    for w in quiet:
        w["signals"].update(heart_rate=None, hrv_rmssd=None, f0_mean=None)
    assert "neither the pulse nor the voice" in check.result(quiet, history(5))["reason"]


def test_hints() -> None:
    assert "not sending" in check.hint(1.0, 0.5, "lost")
    assert "Too dark" in check.hint(1.0, 0.05, "live")
    assert "Move into the frame" in check.hint(0.1, 0.5, "live")
    assert check.hint(0.95, 0.5, "live").startswith("Good")


def test_without_the_pin_a_check_is_measured_but_not_compared() -> None:
    result = check.result(windows(seed=99, heart_rate=15.0), history(5), compare=False)
    assert result["verdict"] == "inconclusive" and result["label"] == check.NOT_COMPARED
    assert result["stress"] is None and result["checks_in_baseline"] == 0
    assert result["compared"] is False and "no PIN" in result["reason"]
    assert "drivers" not in result  # nothing about the usual range leaks through
    assert result["summary"]["heart_rate"] is not None  # measured all the same
    dark = check.result(windows(brightness=0.05), history(5), compare=False)
    assert dark["reason"] == "too dark to see the face well"  # what to fix still comes first
