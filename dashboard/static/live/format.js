// Formatting helpers and the client-side export (CSV and JSON) of the live page.

export const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
// Fixed colours, one per class, distinguishable on the dark background.
export const EMOTION_COLORS = {
  angry: "#f85149", disgust: "#8fbf3a", fear: "#a371f7", happy: "#e3b341",
  sad: "#4493f8", surprise: "#f778ba", neutral: "#6e7d8c",
};

export const DASH = "–";
export const NOT_AVAILABLE = "not available";

export function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

export function fmt(v, digits, unit = "") {
  return isNum(v) ? v.toFixed(digits) + unit : DASH;
}

export function signed(v, digits) {
  if (!isNum(v)) return DASH;
  const s = v.toFixed(digits);
  return Number(s) > 0 ? "+" + s : Number(s) < 0 ? "−" + s.slice(1) : (0).toFixed(digits);
}

const pad2 = (n) => (n < 10 ? "0" : "") + n;

// Local HH:MM:SS (Intl formatting is far too slow to call per label and per frame).
export function clock(t, withMs = false) {
  if (!isNum(t)) return DASH;
  const d = new Date(t * 1000);
  const s = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return withMs ? s + "." + String(Math.floor(d.getMilliseconds() / 10)).padStart(2, "0") : s;
}

export function sentimentClass(v) {
  if (!isNum(v)) return "neu";
  return v > 0.05 ? "pos" : v < -0.05 ? "neg" : "neu";
}

export const SENTIMENT_WORD = { pos: "positive", neg: "negative", neu: "neutral" };

// --- export ---------------------------------------------------------------------------------

export const CSV_COLUMNS = ["t_end", "stream", "state", "stress", "valence", "arousal",
  ...EMOTIONS, "heart_rate", "hrv_rmssd", "blink_rate", "f0_mean", "voice_activity",
  "sentiment", "face_present"];

function csvCell(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "";
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;  // never a formula in a spreadsheet
  return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

export function csvRow(score) {
  const sig = score.signals || {}, emo = score.emotions || {}, q = score.quality || {};
  const iso = isNum(score.t_end) ? new Date(score.t_end * 1000).toISOString() : "";
  return [iso, score.stream, score.state, score.stress, score.valence, score.arousal,
    ...EMOTIONS.map((e) => emo[e]), sig.heart_rate, sig.hrv_rmssd, sig.blink_rate, sig.f0_mean,
    sig.voice_activity, sig.sentiment, q.face ? q.face.present : null].map(csvCell).join(",");
}

export function toCsv(scores) {
  return [CSV_COLUMNS.join(","), ...scores.map(csvRow)].join("\r\n") + "\r\n";
}

export function download(filename, text, type) {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function fileStamp(t) {
  return new Date((isNum(t) ? t : Date.now() / 1000) * 1000).toISOString()
    .replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
}

export function safeName(s) {
  return String(s).replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 64) || "stream";
}
