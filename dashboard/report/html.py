"""The report as one self-contained HTML file: opened from disk, printed, mailed, or served by
the dashboard; it fetches nothing (its Content-Security-Policy forbids it) and carries the
vendored uPlot inline.

Text from the scores file (the transcript, reasons) is escaped into the page and its data
is embedded as JSON with "<" escaped, so a crafted file cannot run script in the reader's
browser. The tables are HTML (they print without script); the plots are drawn by uPlot.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from pathlib import Path
from typing import Any

from wellmon.dashboard.report.arcs import SHAPES
from wellmon.dashboard.report.session import SIGNALS

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
PLOTS = ("arc", "emotions", "affect", "stress", "heart", "blinks", "voice", "coverage")


def policy(nonce: str) -> str:
    """The report's Content-Security-Policy: nothing fetched, only its own scripts run (the
    ones carrying `nonce`), not a script that text from the file might smuggle in."""
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def render(summaries: list[dict[str, Any]], nonce: str | None = None) -> str:
    """The report of one recording, or of several with a table of their arcs first;
    `nonce` (default: a fresh one) is what its scripts carry (`policy`)."""
    nonce = nonce or secrets.token_urlsafe(16)
    sections = "\n".join(_section(i, s) for i, s in enumerate(summaries))
    comparison = _comparison(summaries) if len(summaries) > 1 else ""
    data = json.dumps([{"series": s["series"], "arc": s["arc"], "t0": s["t0_epoch"],
                        "usual": s["stress"]["usual_range"]}
                       for s in summaries], allow_nan=False).replace("<", "\\u003c")
    title = ("wellmon report: " + html.escape(Path(summaries[0]["source"]).name)
             if len(summaries) == 1 else f"wellmon report: {len(summaries)} recordings")
    values = {"NONCE": nonce, "POLICY": policy(nonce), "TITLE": title,
              "CSS": (VENDOR / "uPlot.min.css").read_text() + _CSS,
              "BODY": comparison + sections,
              "UPLOT": (VENDOR / "uPlot.iife.min.js").read_text(), "DATA": data,
              "SCRIPT": _SCRIPT}
    # one pass over the template: a value that holds "@DATA@" is not filled in again
    return re.sub(r"@([A-Z]+)@", lambda m: values[m[1]], _PAGE)


def _section(index: int, s: dict[str, Any]) -> str:
    e = html.escape
    when = f"started {e(s['start'])}, " if s["start"] else ""
    head = (f"<h1>{e(Path(s['source']).name)}</h1><p class=meta>stream {e(s['stream'])}, "
            f"{when}{_duration(s['duration_s'])}, {s['windows']} windows"
            + (f", baseline: {e(s['baseline'])}" if s.get("baseline") else "") + "</p>")
    summary = "<ul class=headline>" + "".join(f"<li>{e(line)}</li>" for line in s["headline"]) \
        + "</ul>"
    note = f"<p class=note>{e(s['note'])}</p>"
    arc = s["arc"]
    arc_text = (f"Shape: <b>{e(arc['shape'])}</b>"
                + (f" (\u201c{e(arc['story'])}\u201d, similarity {arc['similarity']:.2f}; "
                   f"runner-up {e(arc['runner_up'])}, {arc['runner_up_similarity']:.2f})"
                   if arc.get("story") else "")
                if arc["shape"] else e(arc.get("reason") or "no arc"))
    plots = {
        "arc": ("The emotional arc", f"Valence smoothed over time (Gaussian, sigma "
                f"{arc['smoothing_sigma_s'] or 0:.0f} s), with the matched shape's template "
                f"dashed. {arc_text}"),
        "emotions": ("Emotion mix", "The face's expression probabilities per window."),
        "affect": ("Valence and arousal", "Valence -1 (unpleasant) to 1; arousal 0 to 1."),
        "stress": ("Stress index", f"50 is your usual level; the shaded band "
                   f"{s['stress']['usual_range'][0]:.0f}-{s['stress']['usual_range'][1]:.0f} "
                   "is your usual range."),
        "heart": ("Heart rate and HRV", "From the skin's colour; gaps where no pulse was "
                  "measurable."),
        "blinks": ("Blink rate", "Blinks per minute of time with a face."),
        "voice": ("Voice pitch", "Mean fundamental frequency of voiced speech."),
        "coverage": ("Coverage", "Share of each window with a face; voice activity."),
    }
    figures = "".join(
        f"<figure><figcaption><b>{e(title)}</b> {e(text) if name != 'arc' else text}"
        f"</figcaption><div class=plot id=plot-{index}-{name}></div></figure>"
        for name, (title, text) in plots.items())
    return (f"<section>{head}{summary}{note}{figures}{_signals_table(s)}"
            f"{_drivers_table(s)}{_transcript_table(s)}{_coverage_table(s)}"
            f"{_skipped(s)}</section>")


def _signals_table(s: dict[str, Any]) -> str:
    rows = []
    for name, (label, unit, _) in SIGNALS.items():
        st = s["signals"].get(name)
        rows.append(f"<tr><td>{label}</td>" + (
            f"<td>{st['median']:g} {unit}</td><td>{_range(st['min'], st['max'])}</td>"
            f"<td>{st['windows']}</td>" if st else "<td colspan=3>not measured</td>")
            + "</tr>")
    return ("<h2>Signals</h2><table><tr><th>signal</th><th>median</th><th>range</th>"
            "<th>windows</th></tr>" + "".join(rows) + "</table>")


def _range(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _drivers_table(s: dict[str, Any]) -> str:
    stress = s["stress"]
    drivers = stress.get("drivers") or []
    if not drivers:
        return ""
    rows = "".join(f"<tr><td>{html.escape(d['input'])}</td><td>{d['mean_contribution']:+.3f}"
                   "</td></tr>" for d in drivers)
    top = "".join(f"<tr><td>{html.escape(w['at'])}</td><td>{w['stress']}</td>"
                  f"<td>{html.escape(w['driver'] or '-')}</td></tr>"
                  for w in stress.get("top_windows", []))
    gates = ", ".join(f"{html.escape(m['modality'])} {m['mean_gate']:.2f}"
                      for m in stress.get("modalities", []))
    return ("<h2>What moved the stress index</h2><table><tr><th>input</th><th>mean share"
            " of the index (z units)</th></tr>" + rows + "</table>"
            "<h2>The most stressed moments</h2><table><tr><th>at</th><th>stress</th>"
            "<th>driven most by</th></tr>" + top + "</table>"
            + (f"<p class=meta>The fusion model's mean weight per modality: {gates}.</p>"
               if gates else ""))


def _transcript_table(s: dict[str, Any]) -> str:
    if not s["transcript"]:
        return "<h2>Transcript</h2><p>Nothing was recognised.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(u['at'])}</td><td>{html.escape(u['text'])}</td>"
        f"<td>{'' if u['sentiment'] is None else format(u['sentiment'], '+.2f')}</td></tr>"
        for u in s["transcript"])
    return ("<h2>Transcript</h2><table class=transcript><tr><th>at</th><th>said</th>"
            "<th>sentiment</th></tr>"
            + rows + "</table>")


def _coverage_table(s: dict[str, Any]) -> str:
    gaps = s["coverage"]["gaps"]
    if not gaps:
        return "<h2>Coverage</h2><p>Face and voice throughout.</p>"
    rows = "".join(f"<tr><td>no {g['what']}</td><td>{html.escape(g['from'])}-"
                   f"{html.escape(g['to'])}</td><td>{html.escape(g['why'])}</td></tr>"
                   for g in gaps)
    return ("<h2>Coverage</h2><table><tr><th>missing</th><th>when</th><th>why</th></tr>"
            + rows + "</table>")


def _skipped(s: dict[str, Any]) -> str:
    lines = s["skipped_lines"]
    if not lines:
        return ""
    shown = "".join(f"<li>{html.escape(line)}</li>" for line in lines[:20])
    more = f"<li>and {len(lines) - 20} more</li>" if len(lines) > 20 else ""
    return f"<h2>Skipped input</h2><p>{len(lines)} lines were not score messages:</p>" \
        f"<ul>{shown}{more}</ul>"


def _comparison(summaries: list[dict[str, Any]]) -> str:
    rows = []
    for s in summaries:
        arc = s["arc"]
        usual = s["stress"]["usual_percent"]
        rows.append(
            f"<tr><td>{html.escape(Path(s['source']).name)}</td>"
            f"<td>{_duration(s['duration_s'])}</td>"
            f"<td>{html.escape(arc['shape'] or '-')}</td>"
            f"<td>{'' if arc['similarity'] is None else format(arc['similarity'], '.2f')}</td>"
            f"<td>{html.escape(arc['runner_up'] or '')}</td>"
            f"<td>{'' if s['valence'] is None else format(s['valence']['median'], '+.2f')}</td>"
            f"<td>{'' if usual is None else format(usual, '.0f') + ' %'}</td></tr>")
    return ("<section><h1>Arcs compared</h1><table><tr><th>recording</th><th>length</th>"
            "<th>arc</th><th>similarity</th><th>runner-up</th><th>median valence</th>"
            "<th>stress in usual range</th></tr>" + "".join(rows) + "</table>"
            f"<p class=meta>Shapes: {', '.join(SHAPES)} (or flat).</p></section>")


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else \
        f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta http-equiv="Content-Security-Policy" content="@POLICY@">
<meta name=viewport content="width=device-width, initial-scale=1">
<title>@TITLE@</title><style>@CSS@</style></head>
<body>@BODY@
<script nonce="@NONCE@">@UPLOT@</script>
<script type="application/json" id=report-data>@DATA@</script>
<script nonce="@NONCE@">@SCRIPT@</script>
</body></html>
"""

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2430; max-width: 920px;
       margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin: 28px 0 4px; } h2 { font-size: 16px; margin: 22px 0 6px; }
.meta { color: #5b6472; margin: 0 0 10px; } .note { color: #8a4b00; font-style: italic; }
.headline { font-size: 15px; background: #f2f5f9; padding: 10px 10px 10px 28px;
            border-radius: 6px; }
figure { margin: 16px 0; break-inside: avoid; } figcaption { margin-bottom: 4px; }
table { border-collapse: collapse; width: 100%; break-inside: avoid; }
td, th { border-bottom: 1px solid #dde2ea; padding: 4px 6px; text-align: left;
         vertical-align: top; }
section + section { border-top: 2px solid #1d2430; margin-top: 32px; }
@media print { body { margin: 0; max-width: none; } .headline { background: none; } }
"""

_SCRIPT = r"""
(function () {
  const reports = JSON.parse(document.getElementById('report-data').textContent);
  // x ticks on whole seconds, minutes and hours, as a clock would show them
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800];
  const palette = ['#d1495b', '#8f5db7', '#3d5a80', '#edae49', '#00798c', '#66a182',
                   '#7a7a7a'];
  function label(t0) {
    return t => {
      if (t0 !== null) return new Date((t0 + t) * 1000).toISOString().substr(11, 8);
      const s = Math.max(0, Math.round(t));
      const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
      const ss = String(s % 60).padStart(2, '0');
      return s >= 3600 ? Math.floor(s / 3600) + ':' + mm + ':' + ss
                       : Math.floor(s / 60) + ':' + ss;
    };
  }
  function plot(el, t0, x, series, opts) {
    const fmt = label(t0);
    new uPlot(Object.assign({
      width: el.clientWidth || 860, height: 200,
      scales: { x: { time: false } },
      axes: [{ values: (u, ticks) => ticks.map(fmt), incrs: STEPS }, {}],
      series: [{ value: (u, v) => v === null ? '-' : fmt(v) }].concat(series),
      legend: { live: false },
    }, opts || {}), [x].concat(series.map(s => s.data)), el);
  }
  const line = (label, data, stroke, extra) =>
    Object.assign({ label, data, stroke, width: 1.5, spanGaps: false,
                    points: { show: false } }, extra || {});
  reports.forEach((r, i) => {
    const s = r.series, x = s.t_s, el = name => document.getElementById(`plot-${i}-${name}`);
    if (r.arc.t_s.length) {
      plot(el('arc'), r.t0, r.arc.t_s, [
        line('valence (smoothed)', r.arc.valence, '#3d5a80', { width: 2.5 }),
        line(`template: ${r.arc.shape}`, r.arc.template || r.arc.valence.map(() => null),
             '#d1495b', { dash: [6, 4] }),
      ]);
    } else {
      el('arc').textContent = r.arc.reason || 'no arc';
    }
    plot(el('emotions'), r.t0, x, Object.keys(s).filter(k => k.startsWith('emotion_'))
      .map((k, j) => line(k.slice(8), s[k], palette[j % palette.length])),
      { scales: { x: { time: false }, y: { range: [0, 1] } } });
    plot(el('affect'), r.t0, x, [line('valence', s.valence, '#3d5a80'),
                                 line('arousal', s.arousal, '#edae49')],
         { scales: { x: { time: false }, y: { range: [-1, 1] } } });
    const usual = r.usual;
    plot(el('stress'), r.t0, x, [
      line('stress', s.stress, '#d1495b', { width: 2 }),
      line('band low', s.stress_low, '#d1495b55', { width: 0.5 }),
      line('band high', s.stress_high, '#d1495b55', { width: 0.5 }),
      line('usual low', x.map(() => usual[0]), '#66a182', { dash: [4, 4] }),
      line('usual high', x.map(() => usual[1]), '#66a182', { dash: [4, 4] }),
    ], { scales: { x: { time: false }, y: { range: [0, 100] } },
         bands: [{ series: [5, 4], fill: '#66a18222' }, { series: [3, 2], fill: '#d1495b22' }] });
    plot(el('heart'), r.t0, x, [line('heart rate (bpm)', s.heart_rate, '#d1495b'),
                                line('HRV RMSSD (ms)', s.hrv_rmssd, '#00798c',
                                     { scale: 'ms' })],
         { axes: [{ values: (u, t) => t.map(label(r.t0)), incrs: STEPS }, {},
                  { scale: 'ms', side: 1 }] });
    plot(el('blinks'), r.t0, x, [line('blinks per minute', s.blink_rate, '#8f5db7')]);
    plot(el('voice'), r.t0, x, [line('pitch (Hz)', s.f0_mean, '#00798c')]);
    plot(el('coverage'), r.t0, x, [line('face present', s.face_present, '#3d5a80'),
                                   line('voice activity', s.voice_activity, '#edae49')],
         { scales: { x: { time: false }, y: { range: [0, 1] } } });
  });
  document.body.dataset.plotted = 'yes';
})();
"""
