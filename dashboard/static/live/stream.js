// One stream: its bounded column store (what the charts and the export read) and its card.

import { Chart, axis, spacerAxis } from "./charts.js";
import {
  DASH, EMOTIONS, EMOTION_COLORS, NOT_AVAILABLE, SENTIMENT_WORD, clock, fmt, isNum,
  sentimentClass, signed,
} from "./format.js";

export const KEEP_S = 900;          // 15 min kept client-side per stream
export const MAX_POINTS = 1800;     // 15 min at 2 Hz
const MAX_UTTERANCES = 300;
const UNKNOWN_AFTER_S = 6;          // no new score for this long: the state shown is not known
const TREND_S = 60;
const AVG_S = 10;

// Columns kept per window (gap rows hold null everywhere).
const FIELDS = {
  stress: (s) => s.stress,
  valence: (s) => s.valence,
  arousal: (s) => s.arousal,
  hr: (s, sig) => sig.heart_rate,
  hrv: (s, sig) => sig.hrv_rmssd,
  blink: (s, sig) => sig.blink_rate,
  f0: (s, sig) => sig.f0_mean,
  va: (s, sig) => (isNum(sig.voice_activity) ? sig.voice_activity * 100 : null),
  bright: (s, sig) => sig.brightness,
  face: (s, sig, q) => (q.face && isNum(q.face.present) ? q.face.present * 100 : null),
  level: (s, sig) => sig.audio_level_db,
  acov: (s, sig, q) => (q.audio && isNum(q.audio.coverage) && q.audio.present !== false
    ? q.audio.coverage * 100 : null),
};

const INPUT_LABELS = {
  heart_rate: "heart rate ↑", hrv_rmssd: "HRV ↓", blink_rate: "blink rate ↑",
  f0_mean: "voice pitch ↑", jitter: "voice jitter ↑", negative_affect: "negative affect ↑",
};

const num = (v) => (isNum(v) ? v : null);

function pct(v) {
  return isNum(v) ? `${Math.round(v * 100)}\u00a0%` : DASH;
}

function range(fallback, pad) {
  return (u, min, max) => {
    if (!isNum(min) || !isNum(max)) return fallback;
    const p = Math.max(pad, (max - min) * 0.1);
    return [Math.floor(min - p), Math.ceil(max + p)];
  };
}

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function setTitle(el, title) {
  if (el && el.title !== title) el.title = title;
}

// ---------------------------------------------------------------------------------------------

function chartSpecs(st) {
  const C = st.cols;
  const at = (col, i) => (i === null || i < 0 ? null : col[i]);
  return {
    emotions: {
      height: { grid: 110, full: 230 },
      scales: { p: { range: () => [0, 1] } },
      axes: [axis("p", 3, { values: (u, s) => s.map((v) => `${Math.round(v * 100)}%`),
                            splits: () => [0, 0.5, 1] }), spacerAxis("p")],
      // Stacked in the README's order from the bottom: series k is the sum of classes
      // 0..k, drawn top of the stack first so that each fill covers only its own layer.
      series: EMOTIONS.map((e, k) => EMOTIONS.length - 1 - k).map((k) => ({
        label: EMOTIONS[k], scale: "p", stroke: EMOTION_COLORS[EMOTIONS[k]], width: 0,
        fill: EMOTION_COLORS[EMOTIONS[k]], points: { show: false } })),
      legend: EMOTIONS.map((e) => ({ label: e, color: EMOTION_COLORS[e], kind: "area" })),
      data: () => [C.t, ...EMOTIONS.map((e, k) => EMOTIONS.length - 1 - k).map((k) => C.cum[k])],
      values: (i) => EMOTIONS.map((e, k) => pct(at(C.emo[k], i))),
      empty: () => [[], ...EMOTIONS.map(() => [])],
    },
    stress: {
      height: { grid: 120, full: 240 },
      scales: { s: { range: () => [0, 100] } },
      axes: [axis("s", 3, { splits: () => [0, 25, 50, 75, 100] }), spacerAxis("s")],
      band: ["s", 40, 60, "rgba(63,185,80,0.16)"],
      series: [{ label: "stress", scale: "s", stroke: "#f0883e", width: 2.5 }],
      legend: [{ label: "stress", color: "#f0883e" },
               { label: "your usual 40–60", color: "rgba(63,185,80,0.45)", kind: "band" }],
      data: () => [C.t, C.stress],
      values: (i) => [fmt(at(C.stress, i), 0), ""],
      empty: () => [[], []],
    },
    affect: {
      height: { grid: 80, full: 160 },
      scales: { a: { range: () => [-1, 1] } },
      zero: "a",
      axes: [axis("a", 3, { splits: () => [-1, 0, 1] }), spacerAxis("a")],
      series: [{ label: "valence", scale: "a", stroke: "#58a6ff", width: 2 },
               { label: "arousal", scale: "a", stroke: "#d2a8ff", width: 2, dash: [6, 4] }],
      legend: [{ label: "valence", color: "#58a6ff" },
               { label: "arousal", color: "#d2a8ff", dash: true }],
      data: () => [C.t, C.valence, C.arousal],
      values: (i) => [signed(at(C.valence, i), 2), signed(at(C.arousal, i), 2)],
      empty: () => [[], [], []],
    },
    physio: {
      height: { grid: 110, full: 210 },
      scales: { pm: { range: range([40, 120], 4) }, ms: { range: range([0, 100], 5) } },
      axes: [axis("pm", 3), axis("ms", 1)],
      series: [{ label: "heart rate", scale: "pm", stroke: "#ff7b72", width: 2 },
               { label: "blink rate", scale: "pm", stroke: "#79c0ff", width: 1.5, dash: [2, 3] },
               { label: "HRV", scale: "ms", stroke: "#56d364", width: 1.5, dash: [6, 4] }],
      legend: [{ label: "heart rate /min", color: "#ff7b72" },
               { label: "blinks /min", color: "#79c0ff", dash: true },
               { label: "HRV ms (right)", color: "#56d364", dash: true }],
      data: () => [C.t, C.hr, C.blink, C.hrv],
      values: (i) => [fmt(at(C.hr, i), 0), fmt(at(C.blink, i), 0), fmt(at(C.hrv, i), 0)],
      empty: () => [[], [], [], []],
    },
    voice: {
      height: { grid: 90, full: 180 },
      scales: { hz: { range: range([80, 250], 10) }, va: { range: () => [0, 100] } },
      axes: [axis("hz", 3), axis("va", 1, { splits: () => [0, 50, 100] })],
      series: [{ label: "pitch", scale: "hz", stroke: "#d2a8ff", width: 2 },
               { label: "voice activity", scale: "va", stroke: "#3fb950", width: 1,
                 fill: "rgba(63,185,80,0.15)" }],
      legend: [{ label: "pitch Hz", color: "#d2a8ff" },
               { label: "voice activity % (right)", color: "rgba(63,185,80,0.6)", kind: "area" }],
      data: () => [C.t, C.f0, C.va],
      values: (i) => [fmt(at(C.f0, i), 0), fmt(at(C.va, i), 0)],
      empty: () => [[], [], []],
    },
    video: {
      height: { grid: 72, full: 110 },
      scales: { b: { range: () => [0, 1] }, f: { range: () => [0, 100] } },
      axes: [axis("b", 3, { splits: () => [0, 1] }),
             axis("f", 1, { splits: () => [0, 100] })],
      series: [{ label: "brightness", scale: "b", stroke: "#58a6ff", width: 1.5 },
               { label: "face present", scale: "f", stroke: "#e3b341", width: 1.5, dash: [4, 3] }],
      legend: [{ label: "brightness", color: "#58a6ff" },
               { label: "face % (right)", color: "#e3b341", dash: true }],
      data: () => [C.t, C.bright, C.face],
      values: (i) => [fmt(at(C.bright, i), 2), fmt(at(C.face, i), 0)],
      empty: () => [[], [], []],
    },
    audio: {
      height: { grid: 72, full: 110 },
      scales: { db: { range: range([-60, 0], 3) }, c: { range: () => [0, 100] } },
      axes: [axis("db", 3), axis("c", 1, { splits: () => [0, 100] })],
      series: [{ label: "level dBFS", scale: "db", stroke: "#3fb950", width: 1.5 },
               { label: "coverage", scale: "c", stroke: "#f0883e", width: 1.5, dash: [4, 3] }],
      legend: [{ label: "level dBFS", color: "#3fb950" },
               { label: "coverage % (right)", color: "#f0883e", dash: true }],
      data: () => [C.t, C.level, C.acov],
      values: (i) => [fmt(at(C.level, i), 1), fmt(at(C.acov, i), 0)],
      empty: () => [[], [], []],
    },
  };
}

// One transcript line: time, text and, for a finished utterance, its sentiment chip.
function utteranceItem(u, final) {
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = clock(u.t_start);
  const text = document.createElement("span");
  text.className = "utt";
  text.textContent = final ? u.text : u.text + " …";
  li.append(time, text);
  if (!final) {
    li.className = "partial";
    li.title = "still being recognised";
  } else if (isNum(u.sentiment)) {
    const cls = sentimentClass(u.sentiment);
    const chip = document.createElement("span");
    chip.className = `chip chip-${cls}`;
    chip.textContent = `${signed(u.sentiment, 2)} ${SENTIMENT_WORD[cls]}`;
    chip.title = `VADER sentiment ${signed(u.sentiment, 3)} (${SENTIMENT_WORD[cls]})`;
    li.appendChild(chip);
  }
  return li;
}

// ---------------------------------------------------------------------------------------------

export class Stream {
  constructor(id, node, view) {
    this.id = id;
    this.node = node;
    this.view = view;
    this.cols = { t: [], state: [], raw: [], emo: EMOTIONS.map(() => []),
                  cum: EMOTIONS.map(() => []) };
    for (const key of Object.keys(FIELDS)) this.cols[key] = [];
    this.last = null;
    this.points = 0;
    this.hop = null;
    this.finals = [];
    this.finalKeys = new Set();
    this.partial = null;
    this.transcriptVersion = 0;
    this.renderedTranscript = "";
    this.dirty = true;         // readouts need a render
    this.chartsDirty = true;   // charts need new data
    this.hover = {};
    this.el = {};
    for (const cls of ["name", "state", "age", "stress", "stress-trend", "stress-level",
      "stress-reason", "emotion", "valence", "arousal", "heart_rate", "hrv_rmssd", "blink_rate",
      "f0_mean", "transcript", "drivers", "presence", "face", "brightness", "motion",
      "audio_level_db", "voice_activity", "sentiment", "latency", "card-paused",
      "q-video-state", "q-video-coverage", "q-video-detail", "q-audio-state",
      "q-audio-coverage", "q-audio-detail", "q-face-state", "q-face-detail"]) {
      this.el[cls] = node.querySelector("." + cls);
    }
    this.why = {};
    for (const w of node.querySelectorAll("[data-why]")) this.why[w.dataset.why] = w;
    setText(this.el.name, id);
    node.dataset.stream = id;
    node.dataset.state = "unknown";
    node.dataset.points = "0";
    node.setAttribute("aria-label", `stream ${id}`);
  }

  // Charts are built once the card is in the document (they need its width).
  buildCharts() {
    this.specs = chartSpecs(this);
    this.charts = {};
    for (const [name, spec] of Object.entries(this.specs)) {
      const el = this.node.querySelector(".chart-" + name);
      const legendEl = this.node.querySelector(`[data-legend="${name}"]`);
      const title = el.closest("figure")?.querySelector(".c-title")?.textContent || name;
      el.setAttribute("role", "img");
      el.setAttribute("aria-label", `${title} of stream ${this.id} over the chosen range; `
        + "the legend above gives the newest values");
      this.charts[name] = new Chart(el, legendEl, spec, () => this.view, `wm-${this.id}`,
                                    (idx) => this.onCursor(name, idx));
    }
  }

  onCursor(name, idx) {
    this.hover[name] = idx;
    this.updateLegend(name);
  }

  // --- data ------------------------------------------------------------------------------

  add(score, raw) {
    const C = this.cols;
    const t = score.t_end;
    if (!isNum(t)) return false;
    if (this.last && t <= this.last.t_end) return false;  // a duplicate or replayed window
    const prev = C.t.length ? C.t[C.t.length - 1] : null;
    if (prev !== null) {
      const dt = t - prev;
      this.hop = this.hop === null ? dt : Math.min(this.hop, Math.max(dt, 0.05));
      if (dt > Math.max(2, 3 * this.hop)) this.pushRow(prev + this.hop / 2, null, null);
    }
    this.pushRow(t, score, raw);
    this.last = score;
    this.points += 1;
    this.mergeTranscript(score.transcript);
    this.trim(t);
    this.dirty = true;
    this.chartsDirty = true;
    return true;
  }

  pushRow(t, score, raw) {
    const C = this.cols;
    C.t.push(t);
    C.raw.push(raw);
    C.state.push(score ? score.state : null);
    const sig = (score && score.signals) || {}, q = (score && score.quality) || {};
    for (const [key, get] of Object.entries(FIELDS)) C[key].push(score ? num(get(score, sig, q)) : null);
    const emo = score && score.emotions;
    let sum = 0;
    EMOTIONS.forEach((e, k) => {
      const p = emo ? num(emo[e]) : null;
      C.emo[k].push(p);
      if (p !== null) sum += p;
      C.cum[k].push(emo ? sum : null);
    });
  }

  trim(latest) {
    const C = this.cols;
    let cut = 0;
    while (cut < C.t.length && C.t[cut] < latest - KEEP_S) cut++;
    cut = Math.max(cut, C.t.length - MAX_POINTS);
    if (cut <= 0) return;
    for (const [key, col] of Object.entries(C)) {
      if (key === "emo" || key === "cum") col.forEach((c) => c.splice(0, cut));
      else col.splice(0, cut);
    }
  }

  // Index of the first t >= x.
  lowerBound(x) {
    const t = this.cols.t;
    let lo = 0, hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // Raw score messages (JSON text) with t_end in [min, max].
  rawInRange(min, max) {
    const C = this.cols, out = [];
    for (let i = this.lowerBound(min); i < C.t.length && C.t[i] <= max; i++) {
      if (C.raw[i] !== null) out.push(C.raw[i]);
    }
    return out;
  }

  mergeTranscript(list) {
    if (!Array.isArray(list)) return;
    let partial = null, changed = false;
    for (const u of list) {
      if (!u || typeof u.text !== "string" || !u.text.trim()) continue;
      if (u.final) {
        const key = `${Number(u.t_start).toFixed(2)}|${Number(u.t_end).toFixed(2)}|${u.text}`;
        if (this.finalKeys.has(key)) continue;
        this.finalKeys.add(key);
        const item = { key, text: u.text, t_start: u.t_start, t_end: u.t_end,
                       sentiment: num(u.sentiment) };
        let i = this.finals.length;
        while (i > 0 && this.finals[i - 1].t_start > item.t_start) i--;
        this.finals.splice(i, 0, item);
        changed = true;
      } else {
        partial = { text: u.text, t_start: u.t_start, t_end: u.t_end };
      }
    }
    while (this.finals.length > MAX_UTTERANCES) this.finalKeys.delete(this.finals.shift().key);
    const before = this.partial ? this.partial.text + this.partial.t_start : "";
    const after = partial ? partial.text + partial.t_start : "";
    if (before !== after) changed = true;
    this.partial = partial;
    if (changed) this.transcriptVersion++;
  }

  // Stress change over the last minute: the mean of the last AVG_S seconds against the mean
  // of AVG_S seconds a minute earlier (or of the earliest ones kept, when less than a minute
  // is): [delta, seconds between the two] or null. Single windows are too noisy to compare.
  trend(upto) {
    const C = this.cols, end = this.lowerBound(upto + 1e-6);
    const mean = (a, b) => {
      let sum = 0, n = 0;
      for (let i = this.lowerBound(a); i < end && C.t[i] <= b; i++) {
        if (C.stress[i] !== null) { sum += C.stress[i]; n++; }
      }
      return n ? sum / n : null;
    };
    let i0 = this.lowerBound(upto - TREND_S - AVG_S);
    while (i0 < end && C.stress[i0] === null) i0++;
    if (i0 >= end) return null;
    const t0 = C.t[i0];
    const span = (upto - AVG_S / 2) - (t0 + AVG_S / 2);
    if (span < 10) return null;
    const recent = mean(upto - AVG_S, upto), older = mean(t0, t0 + AVG_S);
    return recent === null || older === null ? null : [recent - older, span];
  }

  // --- rendering -------------------------------------------------------------------------

  renderCharts() {
    for (const [name, chart] of Object.entries(this.charts)) {
      chart.setData(this.specs[name].data());
      this.updateLegend(name);
    }
    this.chartsDirty = false;
  }

  updateLegend(name) {
    const chart = this.charts && this.charts[name];
    if (!chart) return;
    const hovered = this.hover[name];
    let i = hovered;
    if (i === null || i === undefined) i = this.lowerBound(this.view.max + 1e-6) - 1;
    const t = i >= 0 ? this.cols.t[i] : null;
    chart.legend.set(this.specs[name].values(i >= 0 ? i : null),
                     t === null || t === undefined ? "" : (hovered !== null && hovered !== undefined
                       ? `at ${clock(t)}` : `latest ${clock(t)}`));
  }

  resizeCharts(full) {
    if (!this.charts) return;
    for (const chart of Object.values(this.charts)) chart.resize(full);
  }

  // Value with a reason for null: "–" (reason under it and on hover), or "not available".
  show(cls, value, text, reason, whyKey = cls) {
    const el = this.el[cls], why = this.why[whyKey];
    if (value === undefined) {
      setText(el, NOT_AVAILABLE);
      setTitle(el, "not in the score messages yet");
      el.dataset.null = "na";
      setText(why, "");
    } else if (value === null) {
      setText(el, DASH);
      setTitle(el, reason || "could not be measured in this window");
      el.dataset.null = "1";
      setText(why, reason || "");
      setTitle(why, reason || "");
    } else {
      setText(el, text);
      setTitle(el, "");
      delete el.dataset.null;
      setText(why, "");
    }
  }

  renderReadouts() {
    this.dirty = false;
    const s = this.last;
    if (!s) return;
    const sig = s.signals || {}, q = s.quality || {}, why = s.reasons || {};
    const E = this.el;

    // stress, its trend and its reason
    const stressWhy = why.stress || "";
    if (s.stress === undefined) {
      setText(E.stress, NOT_AVAILABLE);
      setTitle(E.stress, "");
    } else if (isNum(s.stress)) {
      const band = Array.isArray(s.stress_band) && s.stress_band.every(isNum) ? s.stress_band : null;
      setText(E.stress, band ? `${s.stress.toFixed(0)} / 100 (${band[0].toFixed(0)}–${band[1].toFixed(0)})`
        : `${s.stress.toFixed(0)} / 100`);
      setTitle(E.stress, "50 = your usual; 40–60 within your usual range" +
        (band ? `; likely between ${band[0].toFixed(0)} and ${band[1].toFixed(0)} (± one standard error)` : ""));
    } else {
      setText(E.stress, stressWhy.startsWith("inconclusive") || !stressWhy ? "inconclusive" : DASH);
      setTitle(E.stress, stressWhy || "inconclusive");
    }
    E.stress.dataset.null = isNum(s.stress) ? "" : "1";
    setText(E["stress-reason"], isNum(s.stress) ? "" : stressWhy);
    setTitle(E["stress-reason"], isNum(s.stress) ? "" : stressWhy);
    setText(E["stress-level"], !isNum(s.stress) ? ""
      : s.stress > 60 ? "above your usual" : s.stress < 40 ? "below your usual" : "within your usual");
    const tr = isNum(s.stress) ? this.trend(s.t_end) : null;
    if (!isNum(s.stress)) {
      setText(E["stress-trend"], "");
    } else if (!tr) {
      setText(E["stress-trend"], "trend: not available yet");
      E["stress-trend"].dataset.dir = "none";
    } else {
      const [raw, span] = tr;
      const d = Number(raw.toFixed(1));
      const arrow = Math.abs(d) < 1 ? "→" : d > 0 ? "↑" : "↓";
      const when = span >= TREND_S - 1 ? "1 min" : `${Math.round(span)} s`;
      setText(E["stress-trend"], `${arrow} ${signed(d, 1)} in ${when}`);
      E["stress-trend"].dataset.dir = Math.abs(d) < 1 ? "flat" : d > 0 ? "up" : "down";
    }

    // emotion, valence, arousal
    let top = null;
    if (s.emotions) {
      const sorted = Object.entries(s.emotions).filter(([, p]) => isNum(p)).sort((a, b) => b[1] - a[1]);
      if (sorted.length) top = `${sorted[0][0]} ${Math.round(sorted[0][1] * 100)}\u00a0%`;
    }
    this.show("emotion", s.emotions === undefined ? undefined : s.emotions ? (top || null) : null,
              top, why.emotions);
    this.show("valence", s.valence === undefined ? undefined : num(s.valence),
              signed(s.valence, 2), why.valence);
    this.show("arousal", s.arousal === undefined ? undefined : num(s.arousal),
              signed(s.arousal, 2), why.arousal);
    const sv = (key) => (key in sig ? num(sig[key]) : undefined);
    this.show("heart_rate", sv("heart_rate"), fmt(sig.heart_rate, 0, " bpm"), why.heart_rate);
    this.show("hrv_rmssd", sv("hrv_rmssd"), fmt(sig.hrv_rmssd, 0, " ms"), why.hrv_rmssd);
    this.show("blink_rate", sv("blink_rate"), fmt(sig.blink_rate, 0, " /min"), why.blink_rate);
    this.show("f0_mean", sv("f0_mean"), fmt(sig.f0_mean, 0, " Hz"), why.f0_mean);

    // small readouts
    const mini = (cls, key, text) => {
      setText(E[cls], key in sig ? (isNum(sig[key]) ? text : DASH) : NOT_AVAILABLE);
      setTitle(E[cls], isNum(sig[key]) ? "" : why[key] || "");
    };
    mini("brightness", "brightness", fmt(sig.brightness, 3));
    mini("motion", "motion", fmt(sig.motion, 4));
    mini("audio_level_db", "audio_level_db", fmt(sig.audio_level_db, 1, " dBFS"));
    mini("voice_activity", "voice_activity", fmt(isNum(sig.voice_activity)
      ? sig.voice_activity * 100 : null, 0, " %"));
    mini("sentiment", "sentiment", signed(sig.sentiment, 2));
    setText(E.latency, fmt((s.latency_ms || {}).capture_to_publish, 0, " ms"));

    this.renderQuality(q);
    this.renderDrivers(s.drivers);
  }

  renderQuality(q) {
    const E = this.el;
    const badge = (el, state) => {
      const st = typeof state === "string" ? state : "unknown";
      setText(el, state ? st : DASH);
      el.className = el.className.replace(/\bqs-\w+/g, "").trim() + ` qs qs-${st}`;
    };
    for (const m of ["video", "audio"]) {
      const qm = q[m];
      if (!qm) {
        badge(E[`q-${m}-state`], "absent");
        setText(E[`q-${m}-coverage`], DASH);
        setText(E[`q-${m}-detail`], "no data from this input");
        continue;
      }
      badge(E[`q-${m}-state`], qm.state);
      setText(E[`q-${m}-coverage`], qm.present === false ? "0 %" : pct(qm.coverage));
      const bits = [];
      if (isNum(qm.age_s)) bits.push(`age ${qm.age_s.toFixed(1)} s`);
      if (isNum(qm.gaps)) bits.push(`gaps ${qm.gaps}`);
      if (isNum(qm.clipping)) bits.push(`clipping ${(qm.clipping * 100).toFixed(1)} %`);
      setText(E[`q-${m}-detail`], bits.join(" · ") || DASH);
    }
    const face = q.face;
    if (face && isNum(face.present)) {
      const state = face.present >= 0.5 ? "present" : face.present > 0 ? "partial" : "absent";
      badge(E["q-face-state"], state);
      setText(E.face, `${Math.round(face.present * 100)} %`);
      setText(E["q-face-detail"], isNum(face.confidence)
        ? `confidence ${face.confidence.toFixed(2)}` : "no face in the window");
    } else {
      badge(E["q-face-state"], face ? "absent" : null);
      setText(E.face, face ? DASH : NOT_AVAILABLE);
      setText(E["q-face-detail"], DASH);
    }
    setText(E.presence, ["video", "audio"].map((m) => (q[m] ? q[m].state : "absent")).join(" / "));
  }

  renderDrivers(drivers) {
    const box = this.el.drivers;
    if (!Array.isArray(drivers)) {
      setText(box, NOT_AVAILABLE);
      return;
    }
    const key = JSON.stringify(drivers);
    if (key === this.renderedDrivers) return;
    this.renderedDrivers = key;
    box.textContent = "";
    const inputs = drivers.filter((d) => d && typeof d.input === "string");
    const mods = drivers.filter((d) => d && typeof d.modality === "string");
    if (!inputs.length && !mods.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "none in this window";
      box.appendChild(p);
      return;
    }
    if (inputs.length) {
      const h = document.createElement("div");
      h.className = "drv-head";
      h.textContent = "stress inputs (share of the combined z; + toward more stress)";
      box.appendChild(h);
      const scale = Math.max(1, ...inputs.map((d) => Math.abs(num(d.contribution) || 0)));
      for (const d of inputs) {
        const c = num(d.contribution);
        const row = document.createElement("div");
        row.className = "drv-row";
        const label = document.createElement("span");
        label.className = "drv-label";
        label.textContent = INPUT_LABELS[d.input] || d.input;
        const track = document.createElement("span");
        track.className = "drv-track drv-diverge";
        const bar = document.createElement("i");
        bar.className = "drv-bar " + (c === null ? "" : c >= 0 ? "drv-pos" : "drv-neg");
        const w = c === null ? 0 : (Math.abs(c) / scale) * 50;
        bar.style.width = `${w}%`;
        bar.style.left = c !== null && c < 0 ? `${50 - w}%` : "50%";
        track.appendChild(bar);
        const val = document.createElement("span");
        val.className = "drv-val";
        val.textContent = signed(c, 2);
        row.title = `${d.input}: ${signed(c, 3)} of the combined z`;
        row.append(label, track, val);
        box.appendChild(row);
      }
    }
    if (mods.length) {
      const h = document.createElement("div");
      h.className = "drv-head";
      h.textContent = "modalities (fusion gate; moment weighted most)";
      box.appendChild(h);
      for (const d of mods) {
        const g = num(d.gate);
        const row = document.createElement("div");
        row.className = "drv-row";
        const label = document.createElement("span");
        label.className = "drv-label";
        label.textContent = d.modality;
        const track = document.createElement("span");
        track.className = "drv-track";
        const bar = document.createElement("i");
        bar.className = "drv-bar drv-gate";
        bar.style.width = `${g === null ? 0 : Math.max(0, Math.min(1, g)) * 100}%`;
        bar.style.left = "0";
        track.appendChild(bar);
        const val = document.createElement("span");
        val.className = "drv-val";
        val.textContent = fmt(g, 2);
        const moment = document.createElement("span");
        moment.className = "drv-moment";
        moment.textContent = isNum(d.moment)
          ? `@ ${clock(d.moment, true)}${isNum(d.moment_weight) ? ` (w ${d.moment_weight.toFixed(2)})` : ""}`
          : "";
        row.title = `${d.modality}: gate ${fmt(g, 3)}` + (isNum(d.moment)
          ? `, moment ${clock(d.moment, true)}` : ", no moment (one vector per window)");
        row.append(label, track, val, moment);
        box.appendChild(row);
      }
    }
  }

  renderTranscript() {
    const box = this.el.transcript;
    const min = this.view.min;
    const from = this.finals.findIndex((u) => u.t_end >= min);
    const shown = from < 0 ? [] : this.finals.slice(from);
    const partial = this.partial && this.partial.t_end >= min ? this.partial : null;
    const key = `${this.transcriptVersion}|${shown.length}|${shown.length ? shown[0].key : ""}`;
    if (key === this.renderedTranscript) return;
    this.renderedTranscript = key;
    const items = shown.map((u) => u.el || (u.el = utteranceItem(u, true)));
    if (partial) items.push(utteranceItem(partial, false));
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "nothing said in this range";
      items.push(li);
    }
    // The list sits in a column-reverse scroller, which keeps the newest line in view
    // without reading the layout (and leaves the view alone when the user has scrolled up).
    box.replaceChildren(...items);
  }

  // State badge and "last data N s ago", every second even while paused.
  tick(serverNow, connected) {
    const s = this.last, E = this.el;
    let state = s ? s.state : "unknown", title = s ? `stream state from the node: ${s.state}` : "";
    const since = s && isNum(s.t_published) ? Math.max(0, serverNow - s.t_published) : null;
    if (!connected) {
      state = "unknown";
      title = "not connected to the dashboard: the state is not known";
    } else if (since !== null && since > UNKNOWN_AFTER_S) {
      state = "unknown";
      title = `no update from the node for ${Math.round(since)} s`;
    }
    if (!["live", "stale", "lost"].includes(state)) state = "unknown";
    setText(E.state, state);
    setTitle(E.state, title);
    const cls = `state state-${state}`;
    if (E.state.className !== cls) E.state.className = cls;
    if (this.node.dataset.state !== state) this.node.dataset.state = state;
    if (s) {
      this.node.dataset.points = String(this.points);
      this.node.dataset.tEnd = String(s.t_end);
      const ages = Object.values(s.quality || {}).map((m) => m && m.age_s).filter(isNum);
      let age = ages.length ? Math.min(...ages) : null;
      if (age !== null && since !== null) age += since;
      else if (age === null && since !== null) age = since;
      setText(E.age, age === null ? "" : `last data ${age < 10 ? age.toFixed(1) : Math.round(age)} s ago`);
    }
  }
}
