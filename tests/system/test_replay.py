"""`wellmon replay`: the node's windowing offline, checked against the clip's ground truth."""

from __future__ import annotations

import json
import subprocess
import sys


def test_replay_writes_one_score_per_hop_that_follows_the_speech(clip, tmp_path,
                                                                  wellmon_env) -> None:
    path, truth = clip
    out = tmp_path / "scores.jsonl"
    result = subprocess.run([sys.executable, "-m", "wellmon", "replay", str(path), "--out",
                             str(out), "--baseline", "first:60s"], env=wellmon_env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "replay talking.mp4" in result.stderr  # the progress bar
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    t_ends = [s["t_end"] for s in scores]
    assert t_ends == [0.5 * (i + 1) for i in range(len(scores))]
    assert t_ends[-1] >= truth["duration_s"] - 0.5
    assert all(s["stream"] == "talking" and s["state"] == "live" for s in scores)
    assert all(s["stress"] is None and "baseline not ready" in s["reasons"]["stress"]
               for s in scores)  # a 12 s clip is inside the first minute
    assert all(max(s["emotions"], key=s["emotions"].get) == "happy" for s in scores)
    heard = {u["text"] for s in scores for u in s["transcript"] if u["final"]}
    assert heard, "speech-to-text produced no utterance"
    assert any("sentence" in text or "hello" in text for text in heard), heard

    def speech_in(score: dict) -> float:
        return sum(max(0.0, min(end, score["t_end"]) - max(start, score["t_start"]))
                   for start, end, *_ in truth["speech_intervals_s"])

    talking = [s["signals"]["voice_activity"] for s in scores if speech_in(s) >= 1.0]
    silent = [s["signals"]["voice_activity"] for s in scores
              if speech_in(s) == 0 and s["quality"]["audio"]["coverage"] > 0.5]
    assert talking and silent
    assert min(talking) > 0.1 and max(silent) < 0.01
    # blinks, event by event: each window lists the onsets inside it, on the capture clock
    onsets = sorted({t for s in scores for t in s["signals"]["blink_times"]})
    truth_onsets = [start for start, _ in truth["blink_intervals_s"]]
    assert len(onsets) == len(truth_onsets), (onsets, truth_onsets)
    assert all(abs(a - b) <= 0.2 for a, b in zip(onsets, truth_onsets)), (onsets, truth_onsets)
    for s in scores:
        times = s["signals"]["blink_times"]
        assert s["signals"]["blink_count"] == len(times)
        assert all(s["t_start"] <= t < s["t_end"] for t in times)
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["windows"] == len(scores)
    assert report["windows_with"] == {"video": len(scores), "audio": len(scores)}


def test_after_the_baseline_the_stress_index_is_a_number_with_its_drivers(tmp_path,
                                                                         wellmon_env) -> None:
    """The sample clip (40 s) with a 20 s baseline, as live: heart rate (from 10 s on) and
    pitch are in the baseline, so the second half is scored, near "your usual" (the clip is
    calm)."""
    out = tmp_path / "scores.jsonl"
    result = subprocess.run([sys.executable, "-m", "wellmon", "replay", "sample", "--out",
                             str(out), "--no-progress", "--baseline", "first:20s"],
                            env=wellmon_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    scored = [s for s in scores if s["stress"] is not None]
    assert scored, [s["reasons"].get("stress") for s in scores]
    assert all(0 <= s["stress"] <= 100 for s in scored)
    assert all(s["t_end"] > 20.0 for s in scored)  # never inside the baseline
    drivers = scored[-1]["drivers"]
    inputs = [d for d in drivers if "input" in d]
    assert inputs and drivers[0] == inputs[0]  # stress inputs first, largest first
    assert abs(sum(d["contribution"] for d in inputs)) < 3.0 + 1e-6
    modalities = {d["modality"]: d for d in drivers if "modality" in d}
    assert {"visual", "audio", "physio"} <= set(modalities)
    assert scored[-1]["t_start"] <= modalities["visual"]["moment"] <= scored[-1]["t_end"]
    for s in scores:  # fused valence and arousal: the face is always there in this clip
        assert -1 <= s["valence"] <= 1 and -1 <= s["arousal"] <= 1
    wordless = [s for s in scores if s["signals"]["sentiment"] is None]
    assert wordless and all(s["valence"] > 0.5 for s in wordless)  # the smiling astronaut


def replay(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "wellmon", "replay", *argv,
                             "--no-progress"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_a_recording_is_its_own_baseline_so_the_sample_clip_shows_stress(tmp_path,
                                                                        wellmon_env) -> None:
    """By default the usual levels come from the whole recording: the 40 s sample clip gets
    a stress index in every window that has enough inputs (none is waiting for a baseline),
    and its report says which baseline it used."""
    out = tmp_path / "out"
    printed = replay(["sample", "--out", str(out)], wellmon_env).stdout
    scores = [json.loads(line) for line in (out / "sample.jsonl").read_text().splitlines()]
    with_stress = [s for s in scores if s["stress"] is not None]
    assert len(with_stress) >= 0.8 * len(scores), [s["reasons"].get("stress") for s in scores]
    for s in scores:  # the first seconds have too few inputs yet, and say so
        if s["stress"] is None:
            assert s["reasons"]["stress"].startswith("inconclusive: too few signals")
    summary = json.loads((out / "sample.report.json").read_text())
    assert summary["baseline"].startswith("the whole recording")
    assert summary["stress"]["windows"] == len(with_stress)
    assert summary["headline"][0].startswith("Stress within your usual range for ")
    assert summary["arc"]["shape"] in {"flat", "rise", "fall", "fall-rise", "rise-fall",
                                       "rise-fall-rise", "fall-rise-fall"}
    page = (out / "sample.report.html").read_text()
    assert "the whole recording" in page and "A wellness indicator, not a diagnosis." in page
    rows = (out / "sample.report.csv").read_text().splitlines()
    assert len(rows) == len(scores) + 1 and rows[0].startswith("t_end_s,")
    assert f"{len(scores)} windows written to {out / 'sample.jsonl'}" in printed


def test_files_scored_in_parallel_give_the_same_scores_as_one_at_a_time(clip, tmp_path,
                                                                       wellmon_env) -> None:
    path, _ = clip
    files = ["sample", str(path)]
    replay([*files, "--out", str(tmp_path / "one"), "--jobs", "1", "--no-report"],
           wellmon_env)
    replay([*files, "--out", str(tmp_path / "two"), "--jobs", "2", "--no-report"],
           wellmon_env)
    for name in ("sample.jsonl", "talking.jsonl"):
        one, two = (tmp_path / d / name for d in ("one", "two"))
        assert one.read_bytes() == two.read_bytes(), name
        assert len(one.read_text().splitlines()) > 20
