"""Reports as a person reads them: the arc's shape, the summary, and what bad input gets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wellmon.benchmarks.arcs import valence_series
from wellmon.dashboard.report import ReportError, read_scores, summary_of, write_report
from wellmon.dashboard.report.arcs import SHAPES, arc_of


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_of_the_six_shapes_is_recognised_through_noise_lengths_and_time_warps(
        shape: str) -> None:
    for seed, (seconds, warp) in enumerate([(45, 1.0), (300, 0.8), (3600, 1.25),
                                            (120, 0.9), (900, 1.1)]):
        arc = arc_of(*valence_series(shape, seconds, seed, warp))
        assert arc.shape == shape, (seconds, warp, arc.shape, arc.similarity, arc.runner_up)
        assert arc.similarity > arc.runner_up_similarity


def test_a_flat_session_is_reported_flat_not_forced_into_a_shape() -> None:
    rng = np.random.default_rng(7)
    t = list(np.arange(2.0, 600.0, 0.5))
    arc = arc_of(t, list(0.3 + rng.normal(0, 0.15, len(t))))
    assert arc.shape == "flat" and arc.similarity is None and arc.template() is None


def test_too_few_windows_give_no_arc_and_say_why() -> None:
    arc = arc_of([1.0, 2.0, 3.0], [0.1, None, 0.3])
    assert arc.shape is None and "too few" in arc.reason


def window(seq: int, t_end: float, **fields) -> dict:
    """A score message as the node writes it (the fields a report reads)."""
    message = {"stream": "cam", "seq": seq, "t_start": t_end - 4.0, "t_end": t_end,
               "state": "live", "signals": {"heart_rate": 70.0 + seq % 3},
               "quality": {"video": {"present": True, "state": "live"},
                           "audio": {"present": True, "state": "live"},
                           "face": {"present": 1.0, "confidence": 0.9}},
               "latency_ms": {}, "valence": 0.2, "arousal": 0.5, "stress": 50.0,
               "emotions": {"happy": 0.7, "neutral": 0.3}, "drivers": [], "transcript": [],
               "reasons": {}, "v": 1}
    message.update(fields)
    return message


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join(line if isinstance(line, str) else json.dumps(line) + "\n"
                            for line in lines))
    return path


def test_the_summary_says_when_stress_was_highest_and_what_drove_it(tmp_path) -> None:
    windows = [window(i, 0.5 * i) for i in range(1, 121)]
    windows[80]["stress"] = 91.0
    windows[80]["drivers"] = [{"input": "heart_rate", "contribution": 0.9},
                              {"input": "f0_mean", "contribution": 0.2}]
    summary = summary_of(read_scores(write_jsonl(tmp_path / "s.jsonl", windows)))
    assert summary["stress"]["usual_percent"] == pytest.approx(100 * 119 / 120, abs=0.1)
    assert summary["headline"][0] == ("Stress within your usual range for 99 % of the time "
                                      "it could be measured; highest (91) at 0:40, driven by "
                                      "heart rate.")
    assert summary["signals"]["heart_rate"] == {"median": 71.0, "min": 70.0, "max": 72.0,
                                                "windows": 120}
    assert summary["note"] == "A wellness indicator, not a diagnosis."


def test_a_corrupt_line_is_named_skipped_and_counted(tmp_path) -> None:
    bare = {k: v for k, v in window(5, 6.0).items() if k != "signals"}
    lines = [window(1, 4.0), "{not json\n", window(2, 4.5), json.dumps({"seq": "x"}) + "\n",
             json.dumps(window(3, 5.0, stress=float("nan"))) + "\n", window(4, 5.5), bare]
    path = write_jsonl(tmp_path / "s.jsonl", lines)
    summaries = write_report([path], tmp_path / "r.html")
    assert summaries[0]["windows"] == 3
    not_json = "not JSON, or a number that is not finite"
    assert summaries[0]["skipped_lines"] == [f"line 2: {not_json}",
                                             "line 4: not a score message (bad seq)",
                                             f"line 5: {not_json}",
                                             "line 7: not a score message (bad signals)"]
    page = (tmp_path / "r.html").read_text()
    assert "4 lines were not score messages" in page and "line 4: not a score" in page


@pytest.mark.parametrize("content, says", [(None, "no such file"),
                                            ("", "no score messages in the file"),
                                            ("garbage\n", "1 line skipped: line 1: not JSON")])
def test_a_missing_or_empty_file_is_one_clear_error(tmp_path, content, says) -> None:
    path = tmp_path / "s.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportError, match=says) as raised:
        read_scores(path)
    assert str(path) in str(raised.value)


def test_text_from_the_file_cannot_run_script_in_the_report(tmp_path) -> None:
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)> @NONCE@ @UPLOT@"
    windows = [window(i, 0.5 * i, transcript=[{"text": evil, "final": True, "sentiment": 0.1,
                                               "t_start": 1.0, "t_end": 2.0}],
                      reasons={"emotions": evil}) for i in range(1, 30)]
    write_report([write_jsonl(tmp_path / "s.jsonl", windows)], tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page  # shown, as text
    nonce = page.split('<script nonce="')[1].split('"')[0]
    assert page.count(nonce) == 3  # the policy and the two scripts: never the file's text
    assert page.count("var uPlot=") == 1 and "@NONCE@ @UPLOT@" in page


def test_several_recordings_get_a_table_of_their_arcs(tmp_path) -> None:
    rising = [window(i, 0.5 * i, valence=-0.5 + i / 100) for i in range(1, 120)]
    falling = [window(i, 0.5 * i, valence=0.6 - i / 100) for i in range(1, 120)]
    files = [write_jsonl(tmp_path / "monday.jsonl", rising),
             write_jsonl(tmp_path / "tuesday.jsonl", falling)]
    summaries = write_report(files, tmp_path / "week.html")
    assert [s["arc"]["shape"] for s in summaries] == ["rise", "fall"]
    page = (tmp_path / "week.html").read_text()
    assert "Arcs compared" in page and page.index("monday.jsonl") < page.index("tuesday")
    assert [s["source"] for s in json.loads((tmp_path / "week.json").read_text())] == \
        [str(f) for f in files]
    rows = (tmp_path / "week.csv").read_text().splitlines()
    assert rows[0].startswith("recording,t_end_s,") and len(rows) == 1 + 2 * 119
    assert rows[1].startswith("monday.jsonl,0.5,") and rows[-1].startswith("tuesday.jsonl,")


def test_odd_values_in_a_valid_message_do_not_break_the_report(tmp_path) -> None:
    """Fields the score contract leaves open (a transcript's or a driver's entries) are
    read only where they hold what the node writes."""
    odd = [window(i, 0.5 * i,
                  transcript=[{"text": ["x"], "final": True, "t_start": "soon"},
                              {"text": "fine", "final": "yes", "t_start": 1.0},
                              {"text": "kept", "final": True, "t_start": 2.0}],
                  drivers=[{"input": ["hr"], "contribution": 1.0},
                           {"input": "heart_rate", "contribution": "high"},
                           {"modality": 3, "gate": 0.5}, {"input": "f0_mean",
                                                           "contribution": 0.4}],
                  stress_band=[] if i % 2 else [40.0, 60.0, 70.0])
           for i in range(1, 40)]
    summary = write_report([write_jsonl(tmp_path / "odd.jsonl", odd)], tmp_path / "o.html")[0]
    assert [u["text"] for u in summary["transcript"]] == ["kept"]
    assert summary["stress"]["drivers"] == [{"input": "voice pitch", "mean_contribution": 0.4}]
    assert summary["stress"]["highest"]["driver"] == "voice pitch"
    assert set(summary["series"]["stress_low"]) == {None}  # a band is two numbers


json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6)
                           | st.floats(-1e6, 1e6) | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=8)
FIELDS = ("emotions", "valence", "arousal", "stress", "stress_band", "drivers", "transcript",
          "reasons", "signals", "quality", "t_start")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), json_values), max_size=6),
       st.integers(1, 12))
def test_whatever_a_file_holds_the_report_is_made_or_says_why(tmp_path, changes,
                                                               n) -> None:
    """Any value in any field of otherwise real messages: the lines the reader takes make
    a report, the rest are skipped by name; nothing else can happen."""
    lines = []
    for i in range(1, n + 1):
        message = window(i, 0.5 * i)
        for field, value in changes:
            if (i + len(field)) % 3:
                message[field] = value
        lines.append(message)
    path = write_jsonl(tmp_path / "f.jsonl", lines)
    try:
        summaries = write_report([path], tmp_path / "f.html")
    except ReportError as exc:
        assert "no score messages" in str(exc)
        return
    assert summaries[0]["windows"] + len(summaries[0]["skipped_lines"]) == n
