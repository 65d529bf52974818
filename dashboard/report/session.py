"""A recording's or a session's score messages read back and summed up as a person reads
them: what the stress index did against the person's usual range, when it was highest and
why, the emotion mix, the arc, the heart and the voice, what was said, and where the face
or the voice was missing. The JSON summary is the report's data; `html.py` draws it.

"Within your usual range" is a stress index between `USUAL_LOW` and `USUAL_HIGH`: the
person's usual level plus or minus one robust standard deviation of it (the index maps z
= -1 and +1 onto 18 and 82, models/stress/index.py).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from wellmon.dashboard.report.arcs import Arc, arc_of
from wellmon.streamer.wire.protocol import Rejected, loads_finite
from wellmon.streamer.wire.score import is_number, shape_problem

USUAL_LOW, USUAL_HIGH = 18.0, 82.0
EPOCH_AFTER_S = 1e9
"""Times beyond this are capture-clock seconds since 1970 (a live session), shown as clock
time; smaller ones are seconds from a file's start (a replay), shown as mm:ss."""
TOP_WINDOWS = 3
"""How many of the most stressed windows the report lists, with what drove each."""
MIN_GAP_S = 10.0
"""A stretch without a face or a voice is listed from this long (the pauses between
sentences are not missing data)."""
NOTE = "A wellness indicator, not a diagnosis."
SIGNALS = {"heart_rate": ("heart rate", "bpm", 0), "hrv_rmssd": ("HRV (RMSSD)", "ms", 0),
           "blink_rate": ("blink rate", "/min", 0), "f0_mean": ("voice pitch", "Hz", 0),
           "speech_rate": ("speech rate", "syllables/s", 1)}
"""The signals the report shows: name → (what a person calls it, unit, decimals)."""
DRIVER_NAMES = {"heart_rate": "heart rate", "hrv_rmssd": "heart rate variability",
                "f0_mean": "voice pitch", "blink_rate": "blink rate", "jitter": "voice jitter",
                "negative_affect": "facial expression"}


class ReportError(ValueError):
    """A scores file that cannot be reported on, with the reason (the path named)."""


@dataclass
class Scores:
    """The score messages a JSONL file held, in time order, and the lines it had to skip."""

    path: str
    windows: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)
    """One line per skipped input line: its number and why."""


def read_scores(path: str | Path, stream: str | None = None) -> Scores:
    """Every valid score message in a JSONL file. A line that is not a score message is
    skipped and named; a missing or empty file, or one of several streams without `stream`,
    is a ReportError."""
    p = Path(path)
    if not p.is_file():
        raise ReportError(f"{p}: no such file")
    windows: list[dict[str, Any]] = []
    skipped: list[str] = []
    with p.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            message = loads_finite(raw)
            if isinstance(message, Rejected):
                skipped.append(f"line {number}: {message.detail}")
                continue
            problem = shape_problem(message) if isinstance(message, dict) else "not an object"
            if problem is None:  # what the node always writes, and the report reads
                problem = next((key for key in ("stream", "signals", "quality")
                                if key not in message), None)
            if problem is None and not isinstance(message["stream"], str):
                problem = "stream"
            if problem is not None:
                skipped.append(f"line {number}: not a score message (bad {problem})")
                continue
            windows.append(message)
    if not windows:
        n = len(skipped)
        why = f" ({n} line{'' if n == 1 else 's'} skipped: {skipped[0]})" if skipped else ""
        raise ReportError(f"{p}: no score messages in the file{why}")
    streams = Counter(w["stream"] for w in windows)
    if stream is not None:
        windows = [w for w in windows if w["stream"] == stream]
        if not windows:
            raise ReportError(f"{p}: no windows of stream {stream!r} (it has "
                              + ", ".join(sorted(streams)) + ")")
    elif len(streams) > 1:
        raise ReportError(f"{p}: holds several streams (" + ", ".join(sorted(streams))
                          + "): name one with --stream")
    windows.sort(key=lambda w: (w["t_end"], w["seq"]))
    return Scores(str(p), windows, skipped)


def summary_of(scores: Scores, baseline: str | None = None) -> dict[str, Any]:
    """The report's data: a plain-language summary, per-window series for the plots, the
    arc, the transcript, coverage, drivers (see the module doc for the usual range)."""
    w = scores.windows
    t0 = w[0]["t_start"] if w[0]["t_start"] >= EPOCH_AFTER_S else 0.0
    mid = [(x["t_start"] + x["t_end"]) / 2 - t0 for x in w]
    stress = [x.get("stress") for x in w]
    valence = [x.get("valence") for x in w]
    arc = arc_of(mid, valence)
    summary = {
        "source": scores.path,
        "stream": w[0]["stream"],
        "windows": len(w),
        "windows_with": {m: sum(1 for x in w if x["quality"].get(m, {}).get("present"))
                         for m in ("video", "audio")},
        "skipped_lines": scores.skipped,
        "start": _clock(t0),
        "t0_epoch": t0 or None,
        "times": "seconds from the start of the file, or of the session's first window",
        "duration_s": round(w[-1]["t_end"] - max(t0, w[0]["t_start"]), 1),
        "baseline": baseline,
        "stress": _stress_summary(w, stress, t0),
        "emotions": _emotion_mix(w),
        "valence": _stats([v for v in valence if v is not None], 2),
        "arousal": _stats([x.get("arousal") for x in w if x.get("arousal") is not None], 2),
        "signals": {name: _stats([x["signals"].get(name) for x in w
                                  if x["signals"].get(name) is not None], decimals)
                    for name, (_, _, decimals) in SIGNALS.items()},
        "coverage": _coverage(w, t0),
        "transcript": _transcript(w, t0),
        "arc": arc.to_dict(),
        "note": NOTE,
    }
    summary["headline"] = headline(summary, arc)
    summary["series"] = _series(w, t0)
    return summary


def headline(summary: dict[str, Any], arc: Arc) -> list[str]:
    """The summary at the top of the report, in plain sentences."""
    lines = []
    stress = summary["stress"]
    if stress["windows"]:
        line = (f"Stress within your usual range for {stress['usual_percent']:.0f} % of the "
                f"time it could be measured")
        top = stress["highest"]
        if top is not None:
            line += f"; highest ({top['value']:.0f}) at {top['at']}"
            if top.get("driver"):
                line += f", driven by {top['driver']}"
        lines.append(line + ".")
    else:
        lines.append(f"No stress index: {stress['why_none']}.")
    emotions = summary["emotions"]
    if emotions["dominant"]:
        lines.append(f"The face read mostly {emotions['dominant']} "
                     f"({100 * emotions['mix'][emotions['dominant']]:.0f} % of the mix).")
    if arc.shape == "flat":
        lines.append("The mood stayed level (a flat arc).")
    elif arc.shape is not None:
        lines.append(f"The mood followed a {arc.shape} arc (\"{arc.story_name}\", "
                     f"similarity {arc.similarity:.2f}).")
    cov = summary["coverage"]
    lines.append(f"Face seen in {cov['face_percent']:.0f} % of the windows, voice heard in "
                 f"{cov['voice_percent']:.0f} %.")
    return lines


def _stress_summary(windows: list[dict[str, Any]], stress: list[float | None],
                    t0: float) -> dict[str, Any]:
    have = [(x, s) for x, s in zip(windows, stress) if s is not None]
    if not have:
        reasons = Counter(x.get("reasons", {}).get("stress") for x in windows)
        reasons.pop(None, None)
        why = _without_numbers(reasons.most_common(1)[0][0]) if reasons else "never given"
        return {"windows": 0, "usual_percent": None, "median": None, "highest": None,
                "why_none": why, "usual_range": [USUAL_LOW, USUAL_HIGH]}
    values = np.array([s for _, s in have])
    usual = float(np.mean((values >= USUAL_LOW) & (values <= USUAL_HIGH)))
    top_window, top = max(have, key=lambda pair: pair[1])
    return {"windows": len(have), "usual_percent": round(100 * usual, 1),
            "median": round(float(np.median(values))),
            "highest": {"value": round(top), "at": _at(top_window["t_end"], t0),
                        "driver": _top_driver(top_window)},
            "top_windows": [{"at": _at(x["t_end"], t0), "stress": round(v),
                             "driver": _top_driver(x)}
                            for x, v in sorted(have, key=lambda pair: -pair[1])[:TOP_WINDOWS]],
            "drivers": _drivers(windows), "modalities": _modalities(windows),
            "usual_range": [USUAL_LOW, USUAL_HIGH]}


def _top_driver(window: dict[str, Any]) -> str | None:
    """The stress input that added most to this window's index, as a person calls it."""
    name = next((d["input"] for d in window.get("drivers", [])
                 if _is_input(d) and d["contribution"] > 0), None)
    return DRIVER_NAMES.get(name, name)


def _is_input(driver: dict[str, Any]) -> bool:
    """A stress input's entry of a window's drivers (a file may hold anything else)."""
    return isinstance(driver.get("input"), str) and is_number(driver.get("contribution"))


def _modalities(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The modalities by the fusion model's mean gate over the session, largest first."""
    gates: dict[str, list[float]] = {}
    for x in windows:
        for d in x.get("drivers", []):
            if isinstance(d.get("modality"), str) and is_number(d.get("gate")):
                gates.setdefault(d["modality"], []).append(d["gate"])
    return sorted(({"modality": m, "mean_gate": round(float(np.mean(g)), 2)}
                   for m, g in gates.items()), key=lambda m: -m["mean_gate"])


def _drivers(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stress inputs by their mean share of the index over the windows that had one,
    largest first, and the modalities the fusion model weighted most."""
    totals: dict[str, list[float]] = {}
    for x in windows:
        for d in x.get("drivers", []):
            if _is_input(d):
                totals.setdefault(d["input"], []).append(d["contribution"])
    ranked = sorted(totals.items(), key=lambda kv: -abs(float(np.mean(kv[1]))))
    return [{"input": DRIVER_NAMES.get(name, name), "mean_contribution":
             round(float(np.mean(v)), 3)} for name, v in ranked]


def _emotion_mix(windows: list[dict[str, Any]]) -> dict[str, Any]:
    mixes = [x["emotions"] for x in windows if x.get("emotions")]
    if not mixes:
        return {"windows": 0, "mix": {}, "dominant": None}
    labels = sorted(mixes[0])
    mean = {label: round(float(np.mean([m.get(label, 0.0) for m in mixes])), 3)
            for label in labels}
    return {"windows": len(mixes), "mix": mean, "dominant": max(mean, key=mean.get)}


def _coverage(windows: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    """How much of the session had a face and a voice, and the stretches of at least
    `MIN_GAP_S` without, with the reason the node gave."""
    face = [bool(x["quality"].get("face", {}).get("present", 0) >= 0.5) for x in windows]
    voice = [bool((x["signals"].get("voice_activity") or 0) > 0) for x in windows]
    gaps = []
    for name, have, reason_key in (("face", face, "emotions"), ("voice", voice, "f0_mean")):
        run: list[dict[str, Any]] = []
        for x, ok in zip(windows, have):
            if not ok:
                run.append(x)
            if run and (ok or x is windows[-1]):
                if run[-1]["t_end"] - run[0]["t_start"] >= MIN_GAP_S:
                        gaps.append({"what": name, "from": _at(run[0]["t_start"], t0),
                                 "to": _at(run[-1]["t_end"], t0),
                                 "why": run[0].get("reasons", {}).get(reason_key, "")})
                run = []
    return {"face_percent": round(100 * float(np.mean(face)), 1),
            "voice_percent": round(100 * float(np.mean(voice)), 1), "gaps": gaps}


def _transcript(windows: list[dict[str, Any]], t0: float) -> list[dict[str, Any]]:
    """Each finished utterance once (a window repeats those that overlap it)."""
    seen: dict[tuple[float, str], dict[str, Any]] = {}
    for x in windows:
        for u in x.get("transcript", []):
            if u.get("final") is True and isinstance(u.get("text"), str) \
                    and is_number(u.get("t_start")):
                key = (round(float(u["t_start"]), 2), u["text"])
                seen.setdefault(key, {"at": _at(key[0], t0), "t_s": round(key[0] - t0, 1),
                                      "text": u["text"],
                                      "sentiment": _round(u.get("sentiment"), 2)})
    return sorted(seen.values(), key=lambda u: u["t_s"])


def _series(windows: list[dict[str, Any]], t0: float) -> dict[str, list[Any]]:
    """Per-window columns for the plots and the CSV (time: window end from the start, s)."""
    emotions = sorted(next((x["emotions"] for x in windows if x.get("emotions")), {}))
    out: dict[str, list[Any]] = {"t_s": [round(x["t_end"] - t0, 2) for x in windows]}
    out["stress"] = [_round(x.get("stress"), 1) for x in windows]
    bands = [x.get("stress_band") if len(x.get("stress_band") or ()) == 2 else [None, None]
             for x in windows]
    out["stress_low"] = [_round(low, 1) for low, _ in bands]
    out["stress_high"] = [_round(high, 1) for _, high in bands]
    out["valence"] = [_round(x.get("valence"), 3) for x in windows]
    out["arousal"] = [_round(x.get("arousal"), 3) for x in windows]
    for label in emotions:
        out[f"emotion_{label}"] = [_round((x.get("emotions") or {}).get(label), 3)
                                   for x in windows]
    for name, (_, _, decimals) in SIGNALS.items():
        out[name] = [_round(x["signals"].get(name), decimals + 1) for x in windows]
    out["face_present"] = [_round(x["quality"].get("face", {}).get("present"), 2)
                           for x in windows]
    out["voice_activity"] = [_round(x["signals"].get("voice_activity"), 2) for x in windows]
    out["state"] = [x["state"] for x in windows]
    return out


def _stats(values: list[Any], decimals: int) -> dict[str, Any] | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    if not numbers:
        return None
    return {"median": _round(float(np.median(numbers)), decimals),
            "min": _round(min(numbers), decimals), "max": _round(max(numbers), decimals),
            "windows": len(numbers)}


def _round(value: Any, decimals: int) -> float | None:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return round(float(value), decimals) if decimals else float(round(value))


def _clock(t: float) -> str | None:
    """The session's start as clock time (UTC), or None for a replay (seconds from 0)."""
    if t < EPOCH_AFTER_S:
        return None
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _at(t: float, t0: float) -> str:
    """A moment as a person reads it: clock time for a live session, mm:ss for a file."""
    if t0 >= EPOCH_AFTER_S:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S")
    s = max(0, round(t - t0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60}:{s % 60:02d}"


def _without_numbers(reason: str) -> str:
    """A reason without its running count ("baseline not ready (12 s of 60 s)" → the first
    part), so that the most common one is one sentence."""
    return reason.split(" (")[0]

