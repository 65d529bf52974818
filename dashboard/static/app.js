"use strict";
// The live page: one card per stream, fed by the dashboard's WebSocket.
// Charts are uPlot (vendored from npm); data flows one way, server → page.

const HISTORY_S = 300;        // how much of each stream the charts keep
const QUIET_AFTER_MS = 3000;  // no update for this long: the node is probably down

const streams = new Map();
let lastMessageAt = 0;

// The token came in the URL once; the server has set a cookie, so drop it from the bar.
if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", location.pathname);
}

function fmt(value, digits, unit = "") {
  return value === null || value === undefined ? "–" : value.toFixed(digits) + unit;
}

function compact(u, splits) {
  return splits.map((v) => (v === null ? "" : Number(v.toPrecision(3)).toString()));
}

function chartOptions(title, series, width) {
  return {
    title, width, height: 150,
    scales: { x: { time: true }, y: { auto: true }, y2: { auto: true } },
    axes: [
      { stroke: "#8b98a5", grid: { stroke: "#26313c" }, space: 70,
        values: (u, splits) => splits.map((t) => new Date(t * 1000)
          .toLocaleTimeString([], { hour12: false })) },
      { stroke: "#8b98a5", grid: { stroke: "#26313c" }, scale: "y", values: compact, size: 60 },
      { stroke: "#8b98a5", grid: { show: false }, scale: "y2", side: 1, values: compact,
        size: 70 },
    ],
    series: [{}, ...series],
  };
}

function makeStream(name) {
  document.getElementById("empty")?.remove();
  const node = document.getElementById("stream-card").content.firstElementChild.cloneNode(true);
  node.dataset.stream = name;
  node.querySelector(".name").textContent = name;
  document.getElementById("streams").appendChild(node);
  const width = Math.max(300, node.clientWidth - 28);
  const video = new uPlot(chartOptions("video", [
    { label: "brightness", stroke: "#58a6ff", scale: "y", value: (u, v) => fmt(v, 3) },
    { label: "motion", stroke: "#d2a8ff", scale: "y2", value: (u, v) => fmt(v, 4) },
  ], width), [[], [], []], node.querySelector(".chart-video"));
  const audio = new uPlot(chartOptions("audio", [
    { label: "level dBFS", stroke: "#3fb950", scale: "y", value: (u, v) => fmt(v, 1) },
    { label: "voice activity", stroke: "#f0883e", scale: "y2", value: (u, v) => fmt(v, 2) },
  ], width), [[], [], []], node.querySelector(".chart-audio"));
  const s = { name, node, video, audio, t: [], cols: [[], [], [], []], last: null,
              points: 0, dirty: false };
  streams.set(name, s);
  return s;
}

function addScore(score) {
  const s = streams.get(score.stream) || makeStream(score.stream);
  if (s.last && score.t_end <= s.last.t_end) return;  // a replayed or duplicate window
  const sig = score.signals || {};
  s.t.push(score.t_end);
  [sig.brightness, sig.motion, sig.audio_level_db, sig.voice_activity]
    .forEach((v, i) => s.cols[i].push(v ?? null));
  while (s.t.length && s.t[0] < score.t_end - HISTORY_S) {
    s.t.shift();
    s.cols.forEach((c) => c.shift());
  }
  s.last = score;
  s.points += 1;
  s.dirty = true;
}

function render() {
  for (const s of streams.values()) {
    if (!s.dirty) continue;
    s.dirty = false;
    s.video.setData([s.t, s.cols[0], s.cols[1]]);
    s.audio.setData([s.t, s.cols[2], s.cols[3]]);
    const score = s.last, sig = score.signals || {}, q = score.quality || {};
    const $ = (cls) => s.node.querySelector("." + cls);
    const state = $("state");
    state.textContent = score.state;
    state.className = "state state-" + score.state;
    s.node.dataset.state = score.state;
    s.node.dataset.points = String(s.points);
    s.node.dataset.tEnd = String(score.t_end);
    const why = (score.reasons || {}).stress;
    $("stress").textContent = score.stress !== null ? fmt(score.stress, 0) + " / 100"
      : (why && why.startsWith("inconclusive") ? "inconclusive" : "not available");
    $("stress").title = why || "";
    $("emotion").textContent = score.emotions ? topEmotion(score.emotions) : "not available";
    $("brightness").textContent = fmt(sig.brightness, 3);
    $("motion").textContent = fmt(sig.motion, 4);
    $("audio_level_db").textContent = fmt(sig.audio_level_db, 1, " dBFS");
    $("voice_activity").textContent = fmt(sig.voice_activity === null || sig.voice_activity === undefined
      ? null : sig.voice_activity * 100, 0, " %");
    $("presence").textContent = ["video", "audio"].map((m) => (q[m] ? q[m].state : "–")).join(" / ");
    const reasons = score.reasons || {};
    const show = (cls, key, digits, unit, scale = 1) => {
      const v = sig[key];
      $(cls).textContent = v === null || v === undefined ? "–" : fmt(v * scale, digits, unit);
      $(cls).title = reasons[key] || "";
    };
    show("heart_rate", "heart_rate", 0, " bpm");
    show("hrv_rmssd", "hrv_rmssd", 0, " ms");
    show("blink_rate", "blink_rate", 0, " /min");
    show("f0_mean", "f0_mean", 0, " Hz");
    show("sentiment", "sentiment", 2, "");
    $("face").textContent = q.face && q.face.present !== undefined
      ? fmt(q.face.present * 100, 0, " %") : "–";
    const said = (score.transcript || []).map((u) => u.text).filter((t) => t);
    $("transcript").textContent = said.length ? "“" + said.join(" … ") + "”" : "";
    $("latency").textContent = fmt((score.latency_ms || {}).capture_to_publish, 0, " ms");
  }
  const now = Date.now() / 1000;
  for (const s of streams.values()) {
    const ages = Object.values(s.last.quality || {}).map((q) => q.age_s)
      .filter((a) => typeof a === "number");
    const lastData = ages.length ? Math.min(...ages) : null;
    s.node.querySelector(".age").textContent =
      lastData === null ? "" : `last data ${fmt(lastData + Math.max(0, now - s.last.t_published), 1)} s ago`;
  }
  const conn = document.getElementById("connection");
  if (conn.dataset.open === "1" && Date.now() - lastMessageAt > QUIET_AFTER_MS) {
    conn.textContent = "connected, no updates: is the inference node running?";
    conn.className = "conn conn-quiet";
  }
  requestAnimationFrame(render);
}

function topEmotion(emotions) {
  const [label, p] = Object.entries(emotions).sort((a, b) => b[1] - a[1])[0];
  return `${label} ${(p * 100).toFixed(0)} %`;
}

function connect() {
  const conn = document.getElementById("connection");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.onopen = () => {
    conn.dataset.open = "1";
    conn.textContent = "connected";
    conn.className = "conn conn-open";
  };
  ws.onmessage = (event) => {
    lastMessageAt = Date.now();
    if (conn.className !== "conn conn-open") {
      conn.textContent = "connected";
      conn.className = "conn conn-open";
    }
    const msg = JSON.parse(event.data);
    if (msg.type === "history") msg.scores.forEach(addScore);
    else if (msg.type === "score") addScore(msg.score);
  };
  ws.onclose = () => {
    conn.dataset.open = "0";
    conn.textContent = "disconnected — retrying";
    conn.className = "conn conn-closed";
    for (const s of streams.values()) {  // the last state shown is no longer known
      const state = s.node.querySelector(".state");
      state.textContent = "unknown";
      state.className = "state state-stale";
    }
    setTimeout(connect, 1000);
  };
}

connect();
requestAnimationFrame(render);
