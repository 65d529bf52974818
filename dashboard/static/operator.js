"use strict";
// The operator page (admin): the kiosk checks of a day, one check's result and stored
// windows, a person's PIN status, enrolment codes (shown once), resetting a PIN, and
// deleting a person's data. REST only (docs/dashboard-api.md).

(() => {
  const REFRESH_MS = 10000;
  const LABELS = { usual: "Within your usual range", above: "Above your usual range",
                   inconclusive: "Inconclusive" };
  const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
  const EMOTION_COLORS = { angry: "#f85149", disgust: "#8957e5", fear: "#d29922", happy: "#3fb950",
                           sad: "#58a6ff", surprise: "#f0883e", neutral: "#6e7681" };
  const AXIS = { stroke: "#8b98a5", grid: { stroke: "#26313c" }, ticks: { stroke: "#26313c" } };

  const $ = (id) => document.getElementById(id);
  const PERSON = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}$/;
  const personPath = (person) => `/api/persons/${encodeURIComponent(person)}`;

  const st = {
    checks: [],
    signature: "",
    selected: null,         // check id shown in the detail
    detail: null,           // the CHECK shown
    charts: [],
    loading: null,          // AbortController of the list request
    detailLoading: null,
    dayFollowsToday: true,
    lastOk: 0,
    personTimer: null,
    personShown: null,      // the person whose PIN status the detail shows
  };

  // --- formatting ------------------------------------------------------------------------

  const todayUTC = () => new Date().toISOString().slice(0, 10);
  const pad = (n) => String(n).padStart(2, "0");

  function utcTime(t) {
    if (typeof t !== "number") return "–";
    const d = new Date(t * 1000);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }

  function utcDateTime(t) {
    if (typeof t !== "number") return "–";
    return `${new Date(t * 1000).toISOString().slice(0, 10)} ${utcTime(t)} UTC`;
  }

  function num(v, digits, unit = "") {
    return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) + unit : "–";
  }

  function reasonOf(check) {
    return check.reason || (check.result && check.result.reason) || "";
  }

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function verdictNode(result) {
    if (!result || !result.verdict) return el("span", { class: "muted", text: "–" });
    const v = LABELS[result.verdict] ? result.verdict : "inconclusive";
    return el("span", { class: "verdict", dataset: { verdict: v } },
      el("span", { class: "vicon", "aria-hidden": "true" }),
      el("span", { class: "vtext", text: result.label || LABELS[v] }));
  }

  // --- status line -----------------------------------------------------------------------

  function setStatus(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = "conn " + cls;
  }

  function setPageState(state) {
    document.body.dataset.state = state;
    const auth = state === "auth";
    $("auth-error").hidden = !auth;
    $("layout").hidden = auth;
  }

  // --- list ------------------------------------------------------------------------------

  function query() {
    const p = new URLSearchParams();
    p.set("day", $("filter-day").value || todayUTC());
    if ($("filter-status").value) p.set("status", $("filter-status").value);
    const person = $("filter-person").value.trim();
    if (person) p.set("person", person);
    return p;
  }

  async function getJSON(url, options = {}) {
    const res = await fetch(url, { cache: "no-store", credentials: "same-origin",
                                   headers: { Accept: "application/json" }, ...options });
    let body = null;
    const text = await res.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch (err) {
      body = null;
    }
    return { res, body, text };
  }

  function httpProblem(res, body, text) {
    const why = (body && (body.error || body.reason)) || (text || "").trim().slice(0, 200);
    return `HTTP ${res.status}${why ? ": " + why : ""}`;
  }

  async function load() {
    if (st.dayFollowsToday && $("filter-day").value !== todayUTC()) $("filter-day").value = todayUTC();
    if (st.loading) st.loading.abort();
    const ctrl = new AbortController();
    st.loading = ctrl;
    const q = query();
    try {
      const { res, body, text } = await getJSON(`/api/checks?${q}`, { signal: ctrl.signal });
      if (ctrl !== st.loading) return;
      if (res.status === 401 || res.status === 403) {
        setPageState("auth");
        setStatus(res.status === 401 ? "not signed in" : "not allowed", "conn-closed");
        $("counts").textContent = "";
        st.signature = "";
        st.lastOk = 0;
        placeholder("This page needs an admin sign-in: open a link from `wellmon login admin`.");
        return;
      }
      if (!res.ok || !body || !Array.isArray(body.checks)) {
        showLoadError(`Could not load the checks (${res.ok ? "unexpected answer" : httpProblem(res, body, text)}). ` +
                      "Retrying every 10 s.");
        return;
      }
      setPageState("ok");
      $("load-error").hidden = true;
      st.lastOk = Date.now();
      setStatus(`updated ${new Date().toLocaleTimeString([], { hour12: false })}`, "conn-open");
      renderTable(body.checks, q);
      if (st.selected !== null && st.detail && st.detail.status === "running") openDetail(st.selected, false);
    } catch (err) {
      if (err.name === "AbortError") return;
      showLoadError("The dashboard is not reachable. Retrying every 10 s.");
    } finally {
      if (st.loading === ctrl) st.loading = null;
    }
  }

  function showLoadError(text) {
    if (document.body.dataset.state !== "auth") setPageState(st.lastOk ? "ok" : "error");
    $("load-error").textContent = text + (st.lastOk ? " The table shows the last good answer." : "");
    $("load-error").hidden = false;
    setStatus("error", "conn-closed");
    if (!st.lastOk) placeholder("The checks could not be loaded.");
  }

  function placeholder(text) {
    $("checks").tBodies[0].replaceChildren(
      el("tr", { class: "placeholder" }, el("td", { colspan: "7", text })));
  }

  function renderCounts(checks) {
    const by = (pred) => checks.filter(pred).length;
    const parts = [`${checks.length} check${checks.length === 1 ? "" : "s"}`];
    const complete = by((c) => c.status === "complete");
    if (complete) parts.push(`${complete} complete`);
    const above = by((c) => c.result && c.result.verdict === "above");
    if (above) parts.push(`${above} above usual`);
    const failed = by((c) => c.status === "failed" || c.status === "incomplete");
    if (failed) parts.push(`${failed} failed or cancelled`);
    $("counts").textContent = parts.join(" · ");
  }

  function renderTable(checks, q) {
    const signature = q.toString() + JSON.stringify(checks);
    renderCounts(checks);
    if (signature === st.signature) return;   // nothing changed: keep focus and scroll
    st.signature = signature;
    st.checks = checks;
    const tbody = $("checks").tBodies[0];
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.checkId : undefined;
    if (!checks.length) {
      const filtered = q.has("status") || q.has("person");
      placeholder(`No checks on ${q.get("day")}${filtered ? " matching these filters" : ""}.`);
      return;
    }
    const rows = checks.map((c) => {
      const r = c.result || {};
      const tr = el("tr", { tabindex: "0", "aria-selected": String(c.id === st.selected),
                            dataset: { checkId: String(c.id), status: c.status || "" } },
        el("td", { text: utcTime(c.started_at), title: utcDateTime(c.started_at) }),
        el("td", { title: c.person_id ?? "" }, c.person_id ?? "–",
           ...(c.in_baseline === false ? [el("span", { class: "tag", text: "no PIN",
             title: "checked without the PIN: not in the person's history or baseline" })] : [])),
        el("td", { text: c.kiosk ?? "–", title: c.stream ? `stream ${c.stream}` : "" }),
        el("td", {}, el("span", { class: `state state-${c.status}`, text: c.status || "–" })),
        el("td", {}, verdictNode(c.result)),
        el("td", { class: "num", text: num(r.stress, 0) }),
        el("td", { text: reasonOf(c), title: reasonOf(c) }));
      return tr;
    });
    tbody.replaceChildren(...rows);
    if (focusedId !== undefined) {
      const again = tbody.querySelector(`tr[data-check-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function markSelected() {
    for (const tr of $("checks").tBodies[0].rows) {
      if (tr.dataset.checkId !== undefined) {
        tr.setAttribute("aria-selected", String(Number(tr.dataset.checkId) === st.selected));
      }
    }
  }

  // --- detail ----------------------------------------------------------------------------

  function destroyCharts() {
    for (const c of st.charts) c.destroy();
    st.charts = [];
  }

  function closeDetail() {
    const id = st.selected;
    st.selected = null;
    st.detail = null;
    destroyCharts();
    const d = $("detail");
    delete d.dataset.checkId;
    $("detail-title").textContent = "No check selected";
    $("detail-body").hidden = true;
    $("detail-empty").hidden = false;
    $("detail-empty").textContent = "Select a check in the table to see its result and its stored windows.";
    $("detail-close").hidden = true;
    markSelected();
    const row = id !== null && $("checks").querySelector(`tbody tr[data-check-id="${id}"]`);
    if (row) row.focus();
  }

  async function openDetail(id, focus = true) {
    if (st.detailLoading) st.detailLoading.abort();
    const ctrl = new AbortController();
    st.detailLoading = ctrl;
    const fresh = st.selected !== id;
    st.selected = id;
    markSelected();
    const d = $("detail");
    d.dataset.checkId = String(id);
    $("detail-close").hidden = false;
    if (fresh) {
      $("detail-title").textContent = `Check ${id}`;
      $("detail-empty").textContent = "Loading…";
      $("detail-empty").hidden = false;
      $("detail-body").hidden = true;
      destroyCharts();
    }
    if (focus) $("detail-title").focus({ preventScroll: true });
    try {
      const { res, body, text } = await getJSON(`/api/checks/${encodeURIComponent(id)}`,
                                                { signal: ctrl.signal });
      if (ctrl !== st.detailLoading) return;
      if (res.status === 401 || res.status === 403) {
        setPageState("auth");
        return;
      }
      if (!res.ok || !body || !body.check) {
        $("detail-empty").textContent = res.status === 404 ? `Check ${id} no longer exists.`
          : `Could not load check ${id} (${httpProblem(res, body, text)}).`;
        $("detail-empty").hidden = false;
        $("detail-body").hidden = true;
        destroyCharts();
        return;
      }
      renderDetail(body.check, fresh);
    } catch (err) {
      if (err.name === "AbortError") return;
      $("detail-empty").textContent = `Could not load check ${id}: the dashboard is not reachable.`;
      $("detail-empty").hidden = false;
    } finally {
      if (st.detailLoading === ctrl) st.detailLoading = null;
    }
  }

  function renderDetail(check, fresh) {
    st.detail = check;
    const r = check.result || {};
    const s = r.summary || {};
    $("detail-title").textContent = `Check ${check.id} — person ${check.person_id}`;
    $("detail-report").href = `/api/checks/${encodeURIComponent(check.id)}/report`;
    const verdict = r.verdict && LABELS[r.verdict] ? r.verdict
      : (check.status === "complete" ? "inconclusive" : check.status || "none");
    $("detail-card").dataset.verdict = verdict;
    $("detail-label").textContent = r.label || LABELS[verdict]
      || { failed: "Failed", incomplete: "Incomplete", running: "Running" }[check.status] || check.status;
    $("detail-stress").textContent = typeof r.stress === "number"
      ? `stress ${num(r.stress, 1)} / 100 (50 = usual)` : "";
    $("detail-reason").textContent = reasonOf(check) ? `Reason: ${reasonOf(check)}` : "";
    $("detail-advice").textContent = r.advice ? `Advice shown: ${r.advice}` : "";
    const duration = typeof check.ended_at === "number" && typeof check.started_at === "number"
      ? `${num(check.ended_at - check.started_at, 0)} s` : "–";
    const fields = [
      ["status", check.status], ["kiosk", check.kiosk], ["stream", check.stream],
      ["started", utcDateTime(check.started_at)], ["duration", duration],
      ["PIN entered", check.in_baseline === false ? "no: not in history or baseline" : "yes"],
      ["checks in baseline", r.checks_in_baseline ?? "–"],
      ["heart rate", num(s.heart_rate, 0, " bpm")], ["HRV (RMSSD)", num(s.hrv_rmssd, 0, " ms")],
      ["blink rate", num(s.blink_rate, 0, " /min")], ["voice pitch", num(s.f0_mean, 0, " Hz")],
      ["jitter", num(s.jitter, 2, " %")], ["negative affect", num(s.negative_affect, 2)],
      ["face present", typeof s.face_present === "number" ? num(s.face_present * 100, 0, " %") : "–"],
      ["brightness", num(s.brightness, 2)],
      ["windows", s.windows ?? (Array.isArray(check.windows) ? check.windows.length : "–")],
    ];
    $("detail-fields").replaceChildren(...fields.map(([k, v]) =>
      el("div", {}, el("dt", { text: k }), el("dd", { text: v === null || v === undefined || v === "" ? "–" : String(v) }))));
    $("detail-note").textContent = r.note || "A wellness indicator, not a diagnosis.";
    $("delete-person").textContent = `Delete this person's data (${check.person_id})`;
    $("delete-person").dataset.person = check.person_id;
    if (fresh || st.personShown !== check.person_id) loadPerson(check.person_id);
    $("detail-empty").hidden = true;
    $("detail-body").hidden = false;
    renderCharts(check, Array.isArray(check.windows) ? check.windows : []);
    if (fresh) $("detail").scrollIntoView({ block: "nearest" });
  }

  function relativeTimes(check, windows) {
    const ends = windows.map((w) => w.t_end);
    const t0 = typeof check.started_at === "number" && Math.abs(ends[0] - check.started_at) < 86400
      ? check.started_at : ends[0] - 0.5;
    return ends.map((t) => Math.round((t - t0) * 100) / 100);
  }

  function chartWidth() {
    return Math.max(300, Math.floor($("detail-chart").getBoundingClientRect().width));
  }

  function baseOpts(title, width, extraAxes = []) {
    return {
      title, width, height: 170,
      scales: { x: { time: false } },
      axes: [
        { ...AXIS, values: (u, splits) => splits.map((v) => `${v} s`) },
        { ...AXIS, size: 50 },
        ...extraAxes,
      ],
      cursor: { drag: { x: false, y: false } },
    };
  }

  function renderCharts(check, windows) {
    destroyCharts();
    const box = $("detail-chart");
    box.replaceChildren();
    windows = windows.filter((w) => w && typeof w.t_end === "number").sort((a, b) => a.t_end - b.t_end);
    if (!windows.length) {
      box.append(el("p", { class: "empty", text: check.status === "running"
        ? "No windows stored yet." : "No stored windows: retention removed them, or the check had none." }));
      box.dataset.windows = "0";
      return;
    }
    box.dataset.windows = String(windows.length);
    const xs = relativeTimes(check, windows);
    const width = chartWidth();
    const sig = (w, k) => { const v = (w.signals || {})[k]; return typeof v === "number" ? v : null; };
    const face = (w) => { const f = ((w.quality || {}).face || {}).present;
                          return typeof f === "number" ? f : null; };

    const c1 = el("div", { class: "chart", id: "detail-chart-stress" });
    const c2 = el("div", { class: "chart", id: "detail-chart-face" });
    const c3 = el("div", { class: "chart", id: "detail-chart-emotions" });
    box.append(c1, c2, c3);

    const o1 = baseOpts("stress and heart rate", width,
      [{ ...AXIS, scale: "bpm", side: 1, size: 50, grid: { show: false } }]);
    o1.scales.y = { range: [0, 100] };
    o1.scales.bpm = { auto: true };
    o1.series = [
      { label: "time", value: (u, v) => (v === null ? "–" : `${v} s`) },
      { label: "stress", stroke: "#f0883e", width: 2, scale: "y", value: (u, v) => num(v, 1) },
      { label: "heart rate (bpm)", stroke: "#f85149", width: 1.5, scale: "bpm", dash: [6, 4],
        value: (u, v) => num(v, 0) },
    ];
    st.charts.push(new uPlot(o1, [xs, windows.map((w) => (typeof w.stress === "number" ? w.stress : null)),
                                  windows.map((w) => sig(w, "heart_rate"))], c1));

    const o2 = baseOpts("face presence and brightness", width);
    o2.scales.y = { range: [0, 1] };
    o2.series = [
      { label: "time", value: (u, v) => (v === null ? "–" : `${v} s`) },
      { label: "face present", stroke: "#3fb950", width: 2, fill: "rgba(63,185,80,0.12)",
        value: (u, v) => (v === null ? "–" : `${Math.round(v * 100)} %`) },
      { label: "brightness", stroke: "#58a6ff", width: 1.5, value: (u, v) => num(v, 2) },
    ];
    st.charts.push(new uPlot(o2, [xs, windows.map(face), windows.map((w) => sig(w, "brightness"))], c2));

    // emotions, stacked: series k is the cumulative sum up to emotion k, drawn from the top
    // down with opaque fills, so each visible band is one emotion
    const raw = EMOTIONS.map((e) => windows.map((w) => {
      const p = w.emotions && typeof w.emotions[e] === "number" ? w.emotions[e] : null;
      return w.emotions ? (p ?? 0) : null;
    }));
    const cum = [];
    EMOTIONS.forEach((e, k) => {
      cum.push(raw[k].map((v, i) => (v === null ? null : (k ? cum[k - 1][i] : 0) + v)));
    });
    const order = EMOTIONS.map((e, k) => k).reverse();
    const o3 = baseOpts("emotions (stacked share)", width);
    o3.scales.y = { range: [0, 1] };
    o3.series = [
      { label: "time", value: (u, v) => (v === null ? "–" : `${v} s`) },
      ...order.map((k) => ({
        label: EMOTIONS[k], stroke: EMOTION_COLORS[EMOTIONS[k]], fill: EMOTION_COLORS[EMOTIONS[k]],
        width: 0, points: { show: false },
        value: (u, v, si, idx) => (idx === null || raw[k][idx] === null ? "–"
          : `${Math.round(raw[k][idx] * 100)} %`),
      })),
    ];
    st.charts.push(new uPlot(o3, [xs, ...order.map((k) => cum[k])], c3));
  }

  function resizeCharts() {
    if (!st.charts.length) return;
    const width = chartWidth();
    for (const c of st.charts) c.setSize({ width, height: 170 });
  }

  // --- person: PIN status, enrolment codes, reset --------------------------------------

  function utcTimeOrDash(t) {
    return typeof t === "number" ? utcDateTime(t) : "–";
  }

  async function loadPerson(person) {
    st.personShown = person;
    $("person-status").textContent = "Loading…";
    try {
      const { res, body, text } = await getJSON(personPath(person));
      if (st.personShown !== person) return;
      if (!res.ok || !body) {
        $("person-status").textContent = `Could not load the person (${httpProblem(res, body, text)}).`;
        return;
      }
      const parts = [body.secret_set ? `PIN set ${utcTimeOrDash(body.secret_set_at)}` : "no PIN set"];
      if (body.code_expires_at) parts.push(`an enrolment code is waiting (until ${utcTimeOrDash(body.code_expires_at)})`);
      if (body.locked_until) parts.push(`locked after wrong tries until ${utcTimeOrDash(body.locked_until)}`);
      else if (body.failures) parts.push(`${body.failures} wrong tr${body.failures === 1 ? "y" : "ies"} lately`);
      parts.push(`${body.checks} check${body.checks === 1 ? "" : "s"}, ${body.checks_in_baseline} in the baseline`);
      $("person-status").textContent = parts.join(" · ");
      $("person-export").href = `${personPath(person)}/export`;
      await loadAudit(person);
    } catch (err) {
      if (st.personShown === person) $("person-status").textContent = "The dashboard is not reachable.";
    }
  }

  const AUDIT_WORDS = { history: "history shown at the kiosk", read: "read by an operator",
                        export: "exported", delete: "deleted", secret_reset: "PIN reset" };

  async function loadAudit(person) {
    const list = $("person-audit");
    const { res, body } = await getJSON(`${personPath(person)}/audit`);
    if (st.personShown !== person) return;
    list.replaceChildren();
    if (!res.ok || !body || !Array.isArray(body.audit)) {
      list.append(Object.assign(document.createElement("li"), { textContent: "Could not load the audit trail." }));
      return;
    }
    for (const entry of body.audit) {
      const where = entry.origin ? ` (${entry.role}, ${entry.origin})` : ` (${entry.role})`;
      list.append(Object.assign(document.createElement("li"), {
        textContent: `${utcTimeOrDash(entry.at)} · ${AUDIT_WORDS[entry.action] || entry.action}${where}` }));
    }
    if (!body.audit.length) list.append(Object.assign(document.createElement("li"), { textContent: "Nothing yet." }));
  }

  async function issueCode(person) {
    const { res, body, text } = await getJSON(`${personPath(person)}/enrolment`, {
      method: "POST", headers: { Accept: "application/json", "X-Wellmon-Confirm": "enrol" } });
    if (!res.ok || !body || !body.code) throw new Error(httpProblem(res, body, text));
    showCode(body);
    if (st.personShown === person) loadPerson(person);
    return body;
  }

  function showCode(issued) {
    $("code-title").textContent = `Enrolment code for ${issued.person}`;
    $("code-value").textContent = issued.code;
    $("code-text").textContent = "Shown once: give it to the person, who types it at the kiosk " +
      "(\u201cI have an enrolment code\u201d) and chooses a PIN. It works once, only for this ID, " +
      `until ${utcDateTime(issued.expires_at)}. The dashboard keeps only its hash.`;
    $("code-dialog").showModal();
    $("code-close").focus();
  }

  function closeCode() {
    $("code-value").textContent = "";  // it leaves the page with the dialog
    $("code-dialog").close();
  }

  async function enrolFromForm() {
    const person = $("enrol-person-id").value.trim();
    $("enrol-person-error").textContent = "";
    if (!PERSON.test(person)) {
      $("enrol-person-error").textContent = "A badge ID is 1 to 64 letters, digits, . _ or -.";
      return;
    }
    $("enrol-person-submit").disabled = true;
    try {
      await issueCode(person);
      $("enrol-person-id").value = "";
    } catch (err) {
      $("enrol-person-error").textContent = `No code issued (${err.message}).`;
    } finally {
      $("enrol-person-submit").disabled = false;
    }
  }

  function askReset() {
    const person = $("delete-person").dataset.person;
    if (!person) return;
    $("reset-title").textContent = `Reset the PIN of ${person}?`;
    $("reset-text").textContent = "Their PIN stops working at once and any lock is lifted; a new " +
      "enrolment code is shown for them to choose a new PIN. Their checks stay.";
    $("reset-error").hidden = true;
    $("reset-yes").disabled = false;
    $("confirm-reset").showModal();
    $("reset-no").focus();
  }

  async function doReset() {
    const person = $("delete-person").dataset.person;
    $("reset-yes").disabled = true;
    try {
      const { res, body, text } = await getJSON(`${personPath(person)}/secret`, {
        method: "DELETE", headers: { Accept: "application/json", "X-Wellmon-Confirm": "reset" } });
      if (!res.ok) throw new Error(httpProblem(res, body, text));
      $("confirm-reset").close("reset");
      await issueCode(person);
    } catch (err) {
      $("reset-error").textContent = `Not reset (${err.message}).`;
      $("reset-error").hidden = false;
      $("reset-yes").disabled = false;
    }
  }

  // --- delete ----------------------------------------------------------------------------

  function askDelete() {
    const person = $("delete-person").dataset.person;
    if (!person) return;
    const n = st.checks.filter((c) => c.person_id === person).length;
    $("confirm-title").textContent = `Delete all data of person ${person}?`;
    $("confirm-text").textContent = `This deletes the person, every check of theirs (on every day, ` +
      `${n} in this table) and their stored windows. It cannot be undone.`;
    $("confirm-error").hidden = true;
    $("confirm-yes").disabled = false;
    $("confirm-delete").returnValue = "";
    $("confirm-delete").showModal();
    $("confirm-no").focus();
  }

  async function doDelete() {
    const person = $("delete-person").dataset.person;
    $("confirm-yes").disabled = true;
    try {
      const { res, body, text } = await getJSON(personPath(person), {
        method: "DELETE", headers: { Accept: "application/json", "X-Wellmon-Confirm": "delete" } });
      if (res.status === 401 || res.status === 403) {
        $("confirm-error").textContent = "Not allowed: this page needs an admin sign-in (`wellmon login admin`).";
        $("confirm-error").hidden = false;
        return;
      }
      if (!res.ok) {
        $("confirm-error").textContent = `Not deleted (${httpProblem(res, body, text)}).`;
        $("confirm-error").hidden = false;
        $("confirm-yes").disabled = false;
        return;
      }
      const n = body && typeof body.deleted_checks === "number" ? body.deleted_checks : "?";
      $("confirm-delete").close("deleted");
      closeDetail();
      $("detail-empty").textContent = `Deleted person ${person}: ${n} check${n === 1 ? "" : "s"} removed.`;
      $("detail-title").focus();
      st.signature = "";
      load();
    } catch (err) {
      $("confirm-error").textContent = "Not deleted: the dashboard is not reachable.";
      $("confirm-error").hidden = false;
      $("confirm-yes").disabled = false;
    }
  }

  // --- events ----------------------------------------------------------------------------

  function rowOf(target) {
    const tr = target.closest && target.closest("tbody tr[data-check-id]");
    return tr && $("checks").contains(tr) ? tr : null;
  }

  function bind() {
    $("filter-day").value = todayUTC();
    $("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      st.signature = "";
      load();
    });
    $("filter-day").addEventListener("change", () => {
      st.dayFollowsToday = !$("filter-day").value || $("filter-day").value === todayUTC();
      load();
    });
    $("filter-status").addEventListener("change", load);
    $("filter-person").addEventListener("input", () => {
      clearTimeout(st.personTimer);
      st.personTimer = setTimeout(load, 350);
    });
    const tbody = $("checks").tBodies[0];
    tbody.addEventListener("click", (e) => {
      const tr = rowOf(e.target);
      if (tr) openDetail(Number(tr.dataset.checkId), false);
    });
    tbody.addEventListener("keydown", (e) => {
      const tr = rowOf(e.target);
      if (!tr) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        openDetail(Number(tr.dataset.checkId), true);
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const next = e.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
        if (next && next.dataset.checkId !== undefined) next.focus();
      }
    });
    $("detail-close").addEventListener("click", closeDetail);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && st.selected !== null && !document.querySelector("dialog[open]")) {
        closeDetail();
      }
    });
    $("delete-person").addEventListener("click", askDelete);
    $("enrol-person").addEventListener("submit", (e) => {
      e.preventDefault();
      enrolFromForm();
    });
    $("person-code").addEventListener("click", () => {
      const person = $("delete-person").dataset.person;
      if (person) issueCode(person).catch((err) => { $("person-status").textContent = `No code issued (${err.message}).`; });
    });
    $("person-reset").addEventListener("click", askReset);
    $("reset-no").addEventListener("click", () => $("confirm-reset").close("kept"));
    $("reset-yes").addEventListener("click", doReset);
    $("code-close").addEventListener("click", closeCode);
    $("code-dialog").addEventListener("cancel", () => { $("code-value").textContent = ""; });
    $("confirm-no").addEventListener("click", () => $("confirm-delete").close("kept"));
    $("confirm-yes").addEventListener("click", doDelete);
    $("confirm-delete").addEventListener("close", () => {
      if ($("confirm-delete").returnValue !== "deleted" && !$("detail-body").hidden) $("delete-person").focus();
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(resizeCharts, 120);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) load();
    });
  }

  // Pushed: the dashboard says "checks.changed" (a check started, ended or was deleted here
  // or on another dashboard of the same store) over the live page's WebSocket; the page
  // then reloads the list. Scores also arrive there and are ignored. The timer below stays
  // as the fallback when the socket is down.
  let changedTimer = null;
  function listenForChanges() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string" || !event.data.startsWith('{"type": "checks.changed"')) return;
      clearTimeout(changedTimer);
      changedTimer = setTimeout(() => { if (!document.hidden) load(); }, 150);
    });
    ws.addEventListener("close", () => setTimeout(listenForChanges, 3000));
  }

  bind();
  load();
  listenForChanges();
  setInterval(() => {
    if (!document.hidden && !$("confirm-delete").open && !$("code-dialog").open
        && !$("confirm-reset").open) load();
  }, REFRESH_MS);
})();
