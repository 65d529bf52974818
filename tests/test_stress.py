"""Expert stress index on synthetic windows: a calm baseline minute, then known deviations."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from models.stress import (
    FACE_INPUTS,
    INPUTS,
    MIN_FACE_PRESENT,
    PHYSIOLOGICAL,
    SCALE_FLOORS,
    SIGNS,
    WEIGHTS,
    Baseline,
    StressIndex,
    StressResult,
    extract_inputs,
    logistic_map,
    negative_affect,
    score,
)

HOP_S = 0.5
CALM = {"heart_rate": 70.0, "hrv_rmssd": 45.0, "f0_mean": 120.0, "blink_rate": 15.0,
        "jitter": 1.0}
CALM_SD = {"heart_rate": 2.0, "hrv_rmssd": 5.0, "f0_mean": 5.0, "blink_rate": 2.0,
           "jitter": 0.1}
NEUTRAL = {"angry": 0.01, "disgust": 0.005, "fear": 0.01, "happy": 0.05, "sad": 0.03,
           "surprise": 0.02, "neutral": 0.875}


def quality(face: float = 1.0, audio: bool = True) -> dict[str, Any]:
    return {"face": {"present": face, "confidence": 0.9},
            "audio": {"present": audio, "state": "live", "coverage": 1.0}}


def calm_signals(rng: np.random.Generator, **changes: float) -> dict[str, float]:
    signals = {name: CALM[name] + CALM_SD[name] * rng.standard_normal() for name in CALM}
    signals.update({"brightness": 0.5, "hrv_sdnn": 50.0})
    for name, delta in changes.items():
        signals[name] += delta
    return signals


def calm_emotions(rng: np.random.Generator) -> dict[str, float]:
    noisy = {k: max(0.0, v + 0.01 * rng.standard_normal()) for k, v in NEUTRAL.items()}
    total = sum(noisy.values())
    return {k: v / total for k, v in noisy.items()}


def after_baseline(seed: int = 0) -> tuple[StressIndex, np.random.Generator, float]:
    """A StressIndex that has seen a calm baseline minute; returns it, its rng and the time."""
    rng = np.random.default_rng(seed)
    index = StressIndex()
    t = 0.0
    for _ in range(int(60 / HOP_S)):
        t += HOP_S
        result = index.update(calm_signals(rng), calm_emotions(rng), quality(), t)
        assert result.value is None
    return index, rng, t


def run(index: StressIndex, rng: np.random.Generator, t: float, n: int,
        **changes: float) -> list[StressResult]:
    results = []
    for _ in range(n):
        t += HOP_S
        results.append(index.update(calm_signals(rng, **changes), calm_emotions(rng),
                                    quality(), t))
    return results


def test_weights_sum_to_one_and_physiology_outweighs_expression() -> None:
    assert set(WEIGHTS) == set(INPUTS) == set(SIGNS) == set(SCALE_FLOORS)
    assert math.isclose(sum(WEIGHTS.values()), 1.0)
    physiology = sum(WEIGHTS[n] for n in ("heart_rate", "hrv_rmssd", "f0_mean", "jitter"))
    assert physiology > 1 - physiology
    assert all(w > 0 for w in WEIGHTS.values())
    assert all(f > 0 for f in SCALE_FLOORS.values())


def test_logistic_map() -> None:
    assert logistic_map(0.0) == pytest.approx(50.0)
    assert logistic_map(1.0) == pytest.approx(100 / (1 + math.exp(-1.5)))
    assert 0 < logistic_map(-3.0) < 2 and 98 < logistic_map(3.0) < 100


def test_before_baseline_ready_is_inconclusive_with_reason() -> None:
    rng = np.random.default_rng(1)
    index = StressIndex()
    for i in range(41):
        result = index.update(calm_signals(rng), calm_emotions(rng), quality(), 100.0 + i * HOP_S)
    assert result.value is None
    assert result.reason == "inconclusive: baseline not ready (20 s of 60 s)"
    assert index.baseline.count("heart_rate") == 41


def test_calm_stays_near_fifty() -> None:
    index, rng, t = after_baseline()
    results = run(index, rng, t, 60)
    values = [r.value for r in results]
    assert all(v is not None for v in values)
    assert 40 <= float(np.median(values)) <= 60
    assert 40 <= float(np.mean(values)) <= 60
    exact = index.update(CALM, NEUTRAL, quality(), t + 100)
    assert exact.value is not None and 40 <= exact.value <= 60
    assert exact.inputs_used == list(INPUTS)


def test_raised_pulse_and_pitch_raise_the_index() -> None:
    index, rng, t = after_baseline()
    results = run(index, rng, t, 20, heart_rate=15.0, f0_mean=20.0)
    assert all(r.value is not None and r.value > 70 for r in results)
    last = results[-1]
    assert last.contributions["heart_rate"] > 0 and last.contributions["f0_mean"] > 0
    assert sum(last.contributions.values()) == pytest.approx(
        math.log(last.value / (100 - last.value)) / 1.5)


def test_lower_hrv_raises_the_index() -> None:
    index, rng, t = after_baseline()
    calm = run(index, rng, t, 20)
    low = run(index, rng, t + 10, 20, hrv_rmssd=-20.0)
    assert np.mean([r.value for r in low]) > 60
    assert np.mean([r.value for r in low]) > np.mean([r.value for r in calm]) + 10
    assert low[-1].contributions["hrv_rmssd"] > 0


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("direction", [+1, -1])
def test_each_input_sign(name: str, direction: int) -> None:
    """Moving one input by 2 floors in its stress direction raises the index; the other way
    lowers it."""
    baseline = Baseline(min_samples=5)
    for _ in range(20):
        baseline.add({**CALM, "negative_affect": 0.3})
    inputs: dict[str, float | None] = {**CALM, "negative_affect": 0.3}
    inputs[name] = inputs[name] + direction * SIGNS[name] * 2 * SCALE_FLOORS[name]
    result = score(inputs, quality(), baseline)
    assert result.value is not None
    assert (result.value - 50) * direction > 1
    assert result.contributions[name] * direction > 0


def test_missing_face_is_inconclusive_not_zero() -> None:
    index, rng, t = after_baseline()
    signals = calm_signals(rng)
    signals["f0_mean"] = None
    result = index.update(signals, calm_emotions(rng), quality(face=0.2), t + HOP_S)
    assert result.value is None
    assert result.reason == "inconclusive: no face for 80% of the window"
    assert all("no face" in result.excluded[n] for n in FACE_INPUTS)


def test_missing_face_with_voice_scores_from_voice_only() -> None:
    index, rng, t = after_baseline()
    result = index.update(calm_signals(rng, f0_mean=20.0), None, quality(face=0.2), t + HOP_S)
    assert result.value is not None and result.value > 50
    assert result.inputs_used == ["f0_mean", "jitter"]
    assert MIN_FACE_PRESENT == 0.5


def test_too_few_signals() -> None:
    index, rng, t = after_baseline()
    result = index.update({"heart_rate": 80.0}, None, quality(), t + HOP_S)
    assert result.value is None
    assert result.reason == ("inconclusive: too few signals (1 of 6; "
                             "need 2 incl. one physiological)")
    no_physiology = index.update({"blink_rate": 20.0, "jitter": 1.2}, NEUTRAL, quality(),
                                 t + 2 * HOP_S)
    assert no_physiology.value is None and "too few signals (3 of 6" in no_physiology.reason
    assert not set(no_physiology.inputs_used) & set(PHYSIOLOGICAL)


def test_baseline_round_trips_through_dict() -> None:
    index, _, _ = after_baseline()
    data = json.loads(json.dumps(index.baseline.to_dict()))
    restored = Baseline.from_dict(data)
    for name in INPUTS:
        assert restored.stats(name) == index.baseline.stats(name)
        assert restored.count(name) == index.baseline.count(name)
    assert data["stats"]["heart_rate"]["median"] == pytest.approx(70.0, abs=1.0)
    assert restored.ready
    with pytest.raises(ValueError):
        Baseline.from_dict({**data, "version": 99})


def test_person_baseline_scores_from_the_first_window() -> None:
    index, _, _ = after_baseline()
    stored = Baseline.from_dict({**index.baseline.to_dict(), "person_id": "p1"})
    person = StressIndex(baseline=stored)
    result = person.update({**CALM, "heart_rate": 90.0}, NEUTRAL, quality(), 0.5)
    assert stored.person_id == "p1"
    assert result.value is not None and result.value > 60


def test_frozen_baseline_keeps_a_sustained_rise_visible() -> None:
    index, rng, t = after_baseline()
    frozen = run(index, rng, t, 400, heart_rate=15.0, f0_mean=20.0)
    assert frozen[-1].value is not None and frozen[-1].value > 70
    adapting, rng, t = after_baseline()
    adapting.adapt = True
    drift = run(adapting, rng, t, 400, heart_rate=15.0, f0_mean=20.0)
    assert drift[-1].value is not None and drift[-1].value < frozen[-1].value


def test_no_nan_or_inf_on_degenerate_input() -> None:
    index = StressIndex(baseline_s=5)
    for i in range(40):
        result = index.update(CALM, NEUTRAL, quality(), i * HOP_S)
    assert result.value is not None and result.value == pytest.approx(50.0)
    for name in CALM:
        assert index.baseline.stats(name).scale == SCALE_FLOORS[name]
    odd = {"heart_rate": float("nan"), "hrv_rmssd": float("inf"), "f0_mean": 1e300,
           "jitter": "x", "blink_rate": True}
    for signals, emotions, q in [
        ({name: None for name in CALM}, None, quality()),
        (None, None, None),
        ({}, {}, {}),
        (odd, {"angry": float("nan")}, {"face": {"present": float("nan")}}),
        ({**CALM, "heart_rate": 1e308, "f0_mean": -1e308}, NEUTRAL, quality()),
    ]:
        result = index.update(signals, emotions, q, 100.0)
        assert result.value is None or math.isfinite(result.value)
        assert all(math.isfinite(v) for v in result.contributions.values())
    assert math.isfinite(index.update(CALM, NEUTRAL, quality(), float("nan")).value or 0.0)

    empty = StressIndex(baseline_s=1)
    for i in range(10):
        result = empty.update(None, None, None, i * HOP_S)
    assert result.value is None and result.reason.startswith("inconclusive")


def test_extract_inputs() -> None:
    inputs = extract_inputs({**CALM, "hrv_sdnn": 3.0}, NEUTRAL)
    assert set(inputs) == set(INPUTS)
    assert inputs["negative_affect"] == pytest.approx(0.055)
    assert negative_affect(None) is None
    assert negative_affect({"happy": 1.0}) is None
