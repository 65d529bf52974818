// The live page: one card per stream, fed by the dashboard's WebSocket (server → page; the
// page only sends pings). Charts are uPlot (vendored); rendering happens in
// requestAnimationFrame and touches only the cards that changed.

import { Stream } from "./live/stream.js";
import { download, fileStamp, isNum, safeName, toCsv } from "./live/format.js";

const QUIET_SCORES_MS = 3000;   // streams known, no score for this long: is the node running?
const QUIET_ANY_MS = 7000;      // no message at all (node reports come every 5 s)
const PING_MS = 5000;
const DEAD_MS = 16000;          // nothing at all, not even a pong: the connection is dead
const BACKOFF_S = [1, 2, 4, 8, 15];

const $ = (id) => document.getElementById(id);
const streams = new Map();
const view = { min: 0, max: 0, range: 300 };
const ui = { paused: false, waiting: 0, full: null, lastView: "" };
const conn = { ws: null, open: false, attempt: 0, retryAt: 0, lastAny: 0, lastData: 0,
               lastScore: 0, offset: 0, pingSent: 0, node: null, refused: false };
let latestT = null;     // newest t_end of any stream
let framePending = false;
let tickDue = true;


const serverNow = () => Date.now() / 1000 + conn.offset;

function schedule() {
  if (!framePending) {
    framePending = true;
    requestAnimationFrame(frame);
  }
}

// --- streams -----------------------------------------------------------------------------------

const resizer = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const s = streams.get(entry.target.closest(".card")?.dataset.stream);
    if (s) s.resizeCharts(s.node.classList.contains("full"));
  }
});

// Cards scrolled out of view are not drawn; they catch up when they come back.
const onScreen = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const s = streams.get(entry.target.dataset.stream);
    if (s) s.onScreen = entry.isIntersecting;
  }
  schedule();
}, { rootMargin: "300px 0px" });

function makeStream(id) {
  $("empty")?.remove();
  const node = $("stream-card").content.firstElementChild.cloneNode(true);
  const s = new Stream(id, node, view);
  // keep the cards in a stable order (by stream id)
  const main = $("streams");
  const after = [...main.querySelectorAll("section.card")].find((c) => c.dataset.stream > id);
  main.insertBefore(node, after || null);
  s.buildCharts();
  for (const el of node.querySelectorAll(".chart")) resizer.observe(el);
  s.onScreen = true;
  onScreen.observe(node);
  node.querySelector("button.open").addEventListener("click", () => openFull(s));
  node.querySelector("button.close").addEventListener("click", closeFull);
  node.querySelector("button.export").addEventListener("click", () => exportStreams([s]));
  node.querySelector("a.report").href = `/api/streams/${encodeURIComponent(id)}/report`;
  if (ui.paused) s.el["card-paused"].hidden = false;
  streams.set(id, s);
  return s;
}

function addScore(score) {
  if (!score || typeof score.stream !== "string") return;
  const s = streams.get(score.stream) || makeStream(score.stream);
  if (!s.add(score, JSON.stringify(score))) return;
  s.hooksDirty = true;
  if (latestT === null || score.t_end > latestT) latestT = score.t_end;
  if (ui.paused) ui.waiting += 1;
}

// --- rendering ---------------------------------------------------------------------------------

function updateView() {
  if (!ui.paused) view.max = latestT ?? serverNow();
  view.min = view.max - view.range;
  const key = `${view.min}|${view.max}`;
  const changed = key !== ui.lastView;
  ui.lastView = key;
  return changed;
}

function frame() {
  framePending = false;
  updateView();
  const now = serverNow();
  for (const s of streams.values()) {
    const hidden = (ui.full !== null && ui.full !== s) || !s.onScreen;
    if (s.hooksDirty || tickDue) {
      s.hooksDirty = false;
      s.tick(now, conn.open);
    }
    if (hidden) continue;
    // paused: new data wait, but a new range (or a card that missed a view change) redraws
    if ((s.chartsDirty && !ui.paused) || s.shownView !== ui.lastView) {
      s.renderCharts();
      s.shownView = ui.lastView;
    }
    if (!ui.paused) {
      if (s.dirty) s.renderReadouts();
      s.renderTranscript();
    }
  }
  if (tickDue) {
    tickDue = false;
    updateConnection();
    updatePausedFlag();
  }
}

// --- connection --------------------------------------------------------------------------------

function setConn(text, cls) {
  const el = $("connection");
  if (el.textContent !== text) el.textContent = text;
  if (el.className !== `conn ${cls}`) el.className = `conn ${cls}`;
}

function updateConnection() {
  const now = Date.now();
  if (conn.open) {
    const expectScores = streams.size > 0
      && !(conn.node && Array.isArray(conn.node.streams) && conn.node.streams.length === 0);
    const quiet = (expectScores && now - conn.lastScore > QUIET_SCORES_MS)
      || now - conn.lastData > QUIET_ANY_MS;
    if (quiet) setConn("connected, no updates: is the inference node running?", "conn-quiet");
    else setConn("connected", "conn-open");
    if (now - conn.lastAny > DEAD_MS && conn.ws) conn.ws.close();
  } else if (conn.retryAt) {
    const left = Math.max(0, Math.ceil((conn.retryAt - now) / 1000));
    setConn((left > 0 ? `disconnected — retrying in ${left} s` : "disconnected — retrying…")
            + (conn.refused ? " · not signed in: open a new link from `wellmon login viewer`" : ""),
            "conn-closed");
  }
}

function onMessage(event) {
  const now = Date.now();
  conn.lastAny = now;
  let msg;
  try {
    msg = JSON.parse(event.data);
  } catch {
    return;
  }
  if (msg.type === "pong") {
    if (isNum(msg.t) && conn.pingSent) {
      conn.offset = msg.t - (conn.pingSent + now) / 2000;
    }
    return;
  }
  conn.lastData = now;
  if (msg.type === "history") {
    conn.lastScore = now;
    (msg.scores || []).forEach(addScore);
    if (msg.node) showNode(msg.node);
  } else if (msg.type === "score") {
    conn.lastScore = now;
    addScore(msg.score);
  } else if (msg.type === "node") {
    showNode(msg.node);
  }
  tickDue = tickDue || msg.type !== "score";
  schedule();
}

function showNode(node) {
  if (!node || typeof node !== "object") return;
  conn.node = node;
  const bits = [];
  if (node.fusion) bits.push(String(node.fusion));
  else if (node.provider) bits.push(String(node.provider));
  if (isNum(node.published)) bits.push(`${node.published} windows published`);
  if (node.asr && node.asr.error) bits.push(`speech-to-text: ${node.asr.error}`);
  const rejected = node.rejected && typeof node.rejected === "object"
    ? Object.entries(node.rejected).filter(([, n]) => n) : [];
  if (rejected.length) bits.push(`rejected: ${rejected.map(([k, n]) => `${k} ${n}`).join(", ")}`);
  $("node-info").textContent = `node: ${bits.join(" · ") || "running"}`;
}

function ping() {
  if (conn.ws && conn.open) {
    conn.pingSent = Date.now();
    conn.ws.send(JSON.stringify({ type: "ping" }));
  }
}

function connect() {
  conn.retryAt = 0;
  if (conn.attempt === 0) setConn("connecting…", "conn-connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let ws;
  try {
    ws = new WebSocket(`${scheme}://${location.host}/ws`);
  } catch {
    scheduleReconnect();
    return;
  }
  conn.ws = ws;
  ws.onopen = () => {
    conn.open = true;
    conn.attempt = 0;
    conn.refused = false;
    const now = Date.now();
    conn.lastAny = conn.lastData = conn.lastScore = now;
    setConn("connected", "conn-open");
    ping();
    tickDue = true;
    schedule();
  };
  ws.onmessage = onMessage;
  let opened = false;
  ws.addEventListener("open", () => { opened = true; });
  ws.onclose = () => {
    if (conn.ws !== ws) return;
    conn.ws = null;
    conn.open = false;
    if (!opened && conn.attempt >= 1) checkAccess();
    scheduleReconnect();
  };
  ws.onerror = () => {};  // onclose follows
}

// A WebSocket that cannot open does not say why; the status endpoint does (401/403: the
// cookie is gone or refused, e.g. after a token change, and retrying alone will not help).
function checkAccess() {
  fetch("/api/status", { credentials: "same-origin", cache: "no-store" })
    .then((r) => { conn.refused = r.status === 401 || r.status === 403; })
    .catch(() => { conn.refused = false; })
    .finally(() => { tickDue = true; schedule(); });
}

function scheduleReconnect() {
  const base = BACKOFF_S[Math.min(conn.attempt, BACKOFF_S.length - 1)];
  conn.attempt += 1;
  const delay = base * (1 + Math.random() * 0.2) * 1000;
  conn.retryAt = Date.now() + delay;
  setTimeout(connect, delay);
  tickDue = true;  // every stream turns "unknown" at once
  updateConnection();
  schedule();
}

// --- controls ----------------------------------------------------------------------------------

function updatePausedFlag() {
  const flag = $("paused");
  flag.hidden = !ui.paused;
  if (ui.paused) {
    const text = `paused at ${new Date(view.max * 1000).toLocaleTimeString([], { hour12: false })}`
      + (ui.waiting ? ` · ${ui.waiting} new update${ui.waiting === 1 ? "" : "s"} collected` : "");
    if (flag.textContent !== text) flag.textContent = text;
  }
}

function setPaused(paused) {
  ui.paused = paused;
  ui.waiting = 0;
  const btn = $("pause");
  btn.textContent = paused ? "Resume" : "Pause";
  btn.setAttribute("aria-pressed", String(paused));
  document.body.classList.toggle("is-paused", paused);
  for (const s of streams.values()) {
    s.el["card-paused"].hidden = !paused;
    if (!paused) {
      s.dirty = true;
      s.chartsDirty = true;
    }
  }
  tickDue = true;
  schedule();
}

function openFull(s) {
  if (ui.full) closeFull(false);
  ui.full = s;
  document.body.classList.add("has-full");
  s.node.classList.add("full");
  s.node.setAttribute("role", "region");
  s.node.querySelector("button.open").hidden = true;
  s.node.querySelector("button.open").setAttribute("aria-expanded", "true");
  const close = s.node.querySelector("button.close");
  close.hidden = false;
  $("export-all").textContent = "Export stream";
  $("export-all").title = `Download the visible range of ${s.id}`;
  window.scrollTo(0, 0);
  close.focus();
  requestAnimationFrame(() => {
    s.resizeCharts(true);
    s.dirty = true;
    s.chartsDirty = true;
    schedule();
  });
}

function closeFull(restoreFocus = true) {
  const s = ui.full;
  if (!s) return;
  ui.full = null;
  document.body.classList.remove("has-full");
  s.node.classList.remove("full");
  s.node.removeAttribute("role");
  s.node.querySelector("button.close").hidden = true;
  const open = s.node.querySelector("button.open");
  open.hidden = false;
  open.setAttribute("aria-expanded", "false");
  $("export-all").textContent = "Export all";
  $("export-all").title = "Download the visible range of every stream";
  requestAnimationFrame(() => {
    for (const other of streams.values()) {
      other.resizeCharts(false);
      other.dirty = true;
      other.chartsDirty = true;
    }
    schedule();
    if (restoreFocus) {
      open.focus();
      s.node.scrollIntoView({ block: "nearest" });
    }
  });
}

function exportStreams(list) {
  updateView();
  const format = $("export-format").value === "json" ? "json" : "csv";
  const raws = [];
  for (const s of list) raws.push(...s.rawInRange(view.min, view.max));
  const scores = raws.map((r) => JSON.parse(r));
  // one time line across streams
  const order = scores.map((sc, i) => i)
    .sort((a, b) => scores[a].t_end - scores[b].t_end
      || String(scores[a].stream).localeCompare(String(scores[b].stream)));
  const name = list.length === 1 ? safeName(list[0].id) : "all";
  const stamp = fileStamp(view.max);
  if (format === "csv") {
    download(`wellmon-${name}-${stamp}.csv`, toCsv(order.map((i) => scores[i])),
             "text/csv;charset=utf-8");
  } else {
    download(`wellmon-${name}-${stamp}.json`, `[${order.map((i) => raws[i]).join(",\n")}]\n`,
             "application/json");
  }
}

$("pause").addEventListener("click", () => setPaused(!ui.paused));
$("range").addEventListener("change", (e) => {
  const v = Number(e.target.value);
  view.range = [60, 300, 900].includes(v) ? v : 300;
  for (const s of streams.values()) {
    s.chartsDirty = true;
    s.renderedTranscript = "";
  }
  schedule();
});
$("export-all").addEventListener("click", () => {
  exportStreams(ui.full ? [ui.full] : [...streams.values()]);
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && ui.full && !(e.target instanceof HTMLSelectElement)) {
    e.preventDefault();
    closeFull();
  }
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    tickDue = true;
    schedule();
  }
});

view.range = Number($("range").value) || 300;
setInterval(() => {
  tickDue = true;
  schedule();
}, 1000);
setInterval(ping, PING_MS);
connect();
schedule();
