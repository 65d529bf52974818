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
                             str(out)], env=wellmon_env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "replay talking.mp4" in result.stderr  # the progress bar
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    t_ends = [s["t_end"] for s in scores]
    assert t_ends == [0.5 * (i + 1) for i in range(len(scores))]
    assert t_ends[-1] >= truth["duration_s"] - 0.5
    assert all(s["stream"] == "talking" and s["state"] == "live" for s in scores)
    assert all(s["stress"] is None for s in scores)  # no fusion model yet: null
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
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["windows"] == len(scores)
    assert report["windows_with"] == {"video": len(scores), "audio": len(scores)}
