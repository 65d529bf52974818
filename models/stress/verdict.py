"""The kiosk's pre-shift check: a person's 45 s of windows against their own usual checks.

A 45 s check is shorter than the session baseline the live stress index needs (the first
minute), so the check compares the person with their *previous checks* instead: each
complete check leaves a summary (median heart rate, HRV, blink rate, pitch, jitter and
negative affect over its good windows), and the summaries of the person's last
``HISTORY_CHECKS`` checks form a ``models.stress.index.Baseline``. Today's summary is scored
against it with the same weights, signs, floors and quality gate as the live index
(models/stress/index.py), so "your usual" means the same thing on both screens.

Verdicts: ``usual`` (index below ``ABOVE_USUAL``), ``above`` (at or above it) or
``inconclusive`` with the reason and what to do. The first ``MIN_CHECKS`` checks of a
person only build the baseline and read "inconclusive: no usual range yet". A check whose
person did not enter their secret (PIN) is not compared at all (``compare=False``): its
result says whether it measured well, labelled "Not compared", with no stress value, since a
comparison would tell a stranger about the person's usual range. This is a wellness
indicator, not a diagnosis; the result says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from wellmon.models.stress.index import INPUTS, MIN_FACE_PRESENT, Baseline, extract_inputs, index_of

ABOVE_USUAL = 75.0
"""Index at which a check reads "above your usual range": a weighted mean deviation of
about 0.7 robust SD in the stressed direction (see models.stress.index.logistic_map)."""
MIN_CHECKS = 3
"""Earlier complete checks a person needs before a verdict other than inconclusive."""
HISTORY_CHECKS = 20
MIN_WINDOWS = 10
"""Windows with a face (5 s of hops) a check needs at the least."""
MIN_FACE_WINDOWS = 0.5
"""Share of a check's windows that must have a face: fewer, and the person was hardly seen."""
DARK = 0.15
"""Mean luma below which rPPG and expression are unreliable ("too dark")."""
NOTE = "A wellness indicator, not a diagnosis."
LABELS = {"usual": "Within your usual range", "above": "Above your usual range",
          "inconclusive": "Inconclusive"}
NOT_COMPARED = "Not compared"


def _median(values: Iterable[Any]) -> float | None:
    xs = [float(v) for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(np.median(xs)) if xs else None


def check_medians(windows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians over the check's windows with a face (all windows for brightness)."""
    faced = [w for w in windows
             if ((w.get("quality") or {}).get("face") or {}).get("present", 0) >= MIN_FACE_PRESENT]
    inputs = [extract_inputs(w.get("signals"), w.get("emotions")) for w in faced]
    summary: dict[str, Any] = {name: _median(i.get(name) for i in inputs) for name in INPUTS}
    summary["face_present"] = _median(((w.get("quality") or {}).get("face") or {}).get("present")
                                      for w in windows)
    summary["brightness"] = _median((w.get("signals") or {}).get("brightness") for w in windows)
    summary["windows"] = len(windows)
    summary["windows_with_face"] = len(faced)
    return summary


def baseline_of(history: Iterable[Mapping[str, Any]]) -> Baseline:
    """The person's usual levels from their earlier checks' summaries (one value per check)."""
    baseline = Baseline(min_samples=MIN_CHECKS, max_samples=HISTORY_CHECKS)
    for check in history:
        summary = ((check.get("result") or {}).get("summary")) or {}
        baseline.add({name: summary.get(name) for name in INPUTS})
    return baseline


def _inconclusive(reason: str, advice: str, summary: dict[str, Any], n_history: int
                  ) -> dict[str, Any]:
    return {"verdict": "inconclusive", "label": LABELS["inconclusive"], "reason": reason,
            "advice": advice, "stress": None, "summary": summary,
            "checks_in_baseline": n_history, "note": NOTE}


def result(windows: Sequence[Mapping[str, Any]],
           history: Sequence[Mapping[str, Any]], compare: bool = True) -> dict[str, Any]:
    """The check's verdict from its windows and the person's earlier complete checks;
    ``compare=False`` (no secret entered): only whether it measured well, never compared."""
    if not compare:
        history = []
    summary = check_medians(windows)
    n = len(history[:HISTORY_CHECKS])
    face = summary["face_present"] or 0.0
    faced = summary["windows_with_face"] / max(1, summary["windows"])
    if summary["brightness"] is not None and summary["brightness"] < DARK:
        return _inconclusive("too dark to see the face well",
                             "Step closer to the light, or turn a light on.", summary, n)
    if faced < MIN_FACE_WINDOWS:
        return _inconclusive(f"no face for {round(100 * (1 - face))}% of the check",
                             "Stand in front of the screen and look at the camera.",
                             summary, n)
    if summary["windows_with_face"] < MIN_WINDOWS:
        return _inconclusive("the check was too short to measure",
                             "Please try again and stay until the bar is full.", summary, n)
    if summary["heart_rate"] is None and summary["hrv_rmssd"] is None \
            and summary["f0_mean"] is None:
        return _inconclusive("neither the pulse nor the voice could be measured",
                             "Hold still, face the light, and read the sentence aloud.",
                             summary, n)
    if not compare:
        return {**_inconclusive("measured well, but no PIN was entered: this check is not "
                                "compared with your earlier checks",
                                "Enter your PIN at your next check to see it against your "
                                "usual range.", summary, 0),
                "label": NOT_COMPARED, "compared": False}
    if n < MIN_CHECKS:
        return _inconclusive(f"no usual range yet: this is check {n + 1} of the first "
                             f"{MIN_CHECKS}, which set it",
                             "Nothing to do: your next checks will be compared with these.",
                             summary, n)
    scored = index_of({name: summary.get(name) for name in INPUTS},
                   {"face": {"present": face}}, baseline_of(history[:HISTORY_CHECKS]))
    if scored.value is None:
        return _inconclusive(scored.reason or "too few signals",
                             "Hold still, face the light, and read the sentence aloud.",
                             summary, n)
    verdict = "above" if scored.value >= ABOVE_USUAL else "usual"
    return {"verdict": verdict, "label": LABELS[verdict], "reason": None,
            "advice": ("Take a moment before your shift; talk to your supervisor if you "
                       "feel unwell.") if verdict == "above" else None,
            "stress": round(scored.value, 1), "summary": summary,
            "drivers": [{"input": k, "contribution": round(v, 3)} for k, v in sorted(
                scored.contributions.items(), key=lambda kv: -abs(kv[1]))],
            "checks_in_baseline": n, "note": NOTE}


def hint(face: float | None, brightness: float | None, state: str) -> str:
    """What the person should do right now, for the kiosk's framing hint."""
    if state != "live":
        return "The camera is not sending. Please tell your supervisor."
    if brightness is not None and brightness < DARK:
        return "Too dark: step closer to the light."
    if face is None or face < MIN_FACE_PRESENT:
        return "Move into the frame and look at the camera."
    return "Good: hold still and read the sentence aloud."
