"""Reports of recorded sessions: `wellmon report`, replay's report, the dashboard's.

`write_report()` turns score messages (JSONL files) into one self-contained HTML page
(`html.py`), the JSON summary it draws (`session.py`, with the arc from `arcs.py`) and a
CSV of the per-window table. Every file appears whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wellmon.dashboard.report.html import render
from wellmon.dashboard.report.session import ReportError, Scores, read_scores, summary_of
from wellmon.models.node.outputs import output_file

__all__ = ["ReportError", "Scores", "read_scores", "summary_of", "render", "write_report",
           "report_paths"]


def report_paths(out: Path) -> dict[str, Path]:
    """The files a report written to `out` (the HTML page) consists of."""
    return {"html": out, "json": out.with_suffix(".json"), "csv": out.with_suffix(".csv")}


def write_report(inputs: Sequence[str | Path], out: Path, *, stream: str | None = None,
                 baseline: str | None = None) -> list[dict[str, Any]]:
    """Write the report of `inputs` (score JSONL files) to `out` (HTML), with its JSON
    summary and CSV beside it; return the summaries. With several inputs the page starts
    with a table of their arcs and the CSV has a `recording` column."""
    summaries = [summary_of(read_scores(p, stream), baseline) for p in inputs]
    paths = report_paths(out)
    with output_file(paths["html"]) as page, output_file(paths["json"]) as data, \
            output_file(paths["csv"]) as table:
        page.write(render(summaries))
        data.write(json.dumps(summaries[0] if len(summaries) == 1 else summaries,
                              indent=1, allow_nan=False) + "\n")
        table.write(per_window_csv(summaries))
    return summaries


def per_window_csv(summaries: Sequence[dict[str, Any]]) -> str:
    """One row per window: its time from the start and every plotted column."""
    buffer = io.StringIO()
    columns = sorted({c for s in summaries for c in s["series"]} - {"t_s"})
    writer = csv.writer(buffer, lineterminator="\n")
    several = len(summaries) > 1
    writer.writerow((["recording"] if several else []) + ["t_end_s"] + columns)
    for s in summaries:
        series = s["series"]
        for i, t in enumerate(series["t_s"]):
            row = [series[c][i] if c in series else None for c in columns]
            writer.writerow(([Path(s["source"]).name] if several else [])
                            + [t] + ["" if v is None else v for v in row])
    return buffer.getvalue()
