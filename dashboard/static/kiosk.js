"use strict";
// The kiosk page: a guided 45 s pre-shift check over the WebSocket /ws/kiosk
// (docs/dashboard-api.md). Screens: identify → pin (→ enrol) → consent → capture →
// result | failed. body[data-screen] always names the screen shown; the page only ever
// sends check.start (with the PIN when one was entered), enrol, check.cancel and ping.
// The PIN lives in this page's memory for one visit (for "Try again") and is dropped
// when the visit ends; the consent text is written from what the server's hello states.

(() => {
  // A person ID, matched whole (a JS "$" without the m flag does not match before a
  // trailing newline); "." and ".." are not IDs (the server refuses them too).
  const PERSON = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}$/;
  const PIN = /^[0-9]{6,128}$/;
  const BADGE_SECRET = /^[\x21-\x7e]{8,128}$/;
  const RESULT_RETURN_S = 60;     // the result screen goes back to "identify" after this
  const IDLE_RETURN_S = 90;       // consent / failed screens untouched this long: back too
  const STREAM_QUIET_MS = 6000;   // no preview for this long while idle: camera not sending
  const START_TIMEOUT_MS = 10000; // check.start without check.started: give up
  const PROGRESS_TIMEOUT_MS = 15000; // a running check without any progress this long
  const PING_MS = 10000;
  const DEAD_MS = 30000;          // silence after a pong was seen: the socket is dead
  const OVERLAY_GRACE_MS = 1500;  // first connect: no "Reconnecting…" flash before this
  // Mirrors models/check.py hint(): what turns the framing outline green.
  const DARK = 0.15;
  const MIN_FACE_PRESENT = 0.5;
  const LABELS = { usual: "Within your usual range", above: "Above your usual range",
                   inconclusive: "Inconclusive" };
  const NOTE = "A wellness indicator, not a diagnosis.";
  const COLORS = { usual: "#3fb950", above: "#f0883e", inconclusive: "#aab6c2",
                   line: "#58a6ff", grid: "#2d3a47", axis: "#aab6c2" };

  const $ = (id) => document.getElementById(id);


  const st = {
    screen: "identify",
    duration: 45,
    sentence: "",
    retentionDays: null,
    storesMedia: false,
    streamState: null,       // from kiosk.hello / kiosk.preview; null = not known yet
    lastStreamAt: 0,         // last hello/preview/progress that said something about the stream
    lastFraming: null,       // the last {face, brightness, hint, stream_state}
    person: null,
    secret: null,            // the PIN entered on this visit (null: none), for "Try again"
    pendingSecret: null,     // the new PIN of an enrol request awaiting its answer
    consent: false,          // given on this visit, for "Try again"
    storesTranscript: null,  // from kiosk.hello: the facts the consent text is made of
    historyNeedsSecret: true,
    secrets: { pin_min_digits: 6, badge_min_chars: 8, code_digits: 12 },
    busyAt: 0,               // last preview saying another screen's check is running
    phase: "idle",           // idle | starting | running (this page's check)
    checkId: null,
    phaseSince: 0,
    lastProgressAt: 0,
    resultDeadline: 0,
    lastInteraction: Date.now(),
    ws: null,
    connected: false,
    everConnected: false,
    attempt: 0,
    reconnectAt: 0,
    reconnectTimer: null,
    lastMessageAt: 0,
    sawPong: false,
    lastPingAt: 0,
    chart: null,
    noticeTimer: null,
    loadedAt: Date.now(),
  };

  // --- screens -------------------------------------------------------------------------

  const SCREENS = ["identify", "pin", "enrol", "consent", "capture", "result", "failed"];

  function show(name) {
    st.screen = name;
    document.body.dataset.screen = name;
    for (const s of SCREENS) $("screen-" + s).hidden = s !== name;
    st.lastInteraction = Date.now();
    if (name !== "result") destroyChart();
    updateCamera();
    focusScreen();
  }

  function focusScreen() {
    if (!$("reconnecting").hidden) return;
    const target = {
      identify: $("badge"),
      pin: $("pin"),
      enrol: $("enrol-code"),
      consent: $("consent-title"),   // not the accept button: consent is a deliberate step
      capture: $("capture-title"),
      result: $("done"),
      failed: $("retry").disabled || $("retry").hidden ? $("failed-cancel") : $("retry"),
    }[st.screen];
    if (target) target.focus({ preventScroll: true });
  }

  function resetToIdentify() {
    st.person = null;
    st.consent = false;
    forgetSecret();
    $("badge").value = "";
    setBadgeError("");
    show("identify");
  }

  function forgetSecret() {
    st.secret = null;
    for (const id of ["pin", "enrol-code", "enrol-pin", "enrol-pin2"]) $(id).value = "";
    setFieldError("pin", "");
    setFieldError("enrol", "");
  }

  // --- camera / stream state -------------------------------------------------------------

  function streamQuiet() {
    return st.phase === "idle" && st.lastStreamAt > 0 && Date.now() - st.lastStreamAt > STREAM_QUIET_MS;
  }

  function kioskBusy() {
    return st.phase === "idle" && Date.now() - st.busyAt < STREAM_QUIET_MS;
  }

  function cameraLive() {
    return st.streamState === "live" && !streamQuiet() && !kioskBusy();
  }

  function cameraText() {
    if (st.streamState === null) return "Waiting for the camera…";
    if (cameraLive()) return "";
    if (kioskBusy()) return "A check is running on this kiosk: please wait.";
    return "The camera is not sending, so the check cannot start. Please tell your supervisor.";
  }

  function updateCamera() {
    const live = cameraLive();
    const known = st.streamState !== null;
    const pill = $("camera-state");
    pill.textContent = !known ? "camera: waiting" : live ? "camera: sending" : "camera: not sending";
    pill.className = "pill " + (!known ? "pill-wait" : live ? "pill-ok" : "pill-bad");
    document.body.dataset.camera = !known ? "unknown" : live ? "live" : "not-sending";
    const text = cameraText();
    const canStart = live && st.connected;
    $("identify-camera").textContent = text;
    $("identify-camera").classList.toggle("camera-bad", known && !live);
    $("consent-accept").disabled = !canStart;
    $("consent-camera").hidden = canStart;
    $("consent-camera").textContent = st.connected ? (text || "Waiting for the camera…")
      : "Not connected to the dashboard.";
    $("retry").disabled = !canStart;
    $("failed-camera").hidden = canStart || $("retry").hidden;
    $("failed-camera").textContent = $("consent-camera").textContent;
    if (st.screen === "capture" && st.phase === "starting" && known && !live) {
      renderFraming({ stream_state: st.streamState, hint: text });
    }
  }

  function framingState(f) {
    if (!f) return "unknown";
    if (f.stream_state && f.stream_state !== "live") return "adjust";
    if (typeof f.brightness === "number" && f.brightness < DARK) return "adjust";
    if (typeof f.face !== "number" || f.face < MIN_FACE_PRESENT) return "adjust";
    return "good";
  }

  function renderFraming(f) {
    st.lastFraming = f;
    const state = framingState(f);
    $("framing").dataset.state = state;
    const hint = $("hint");
    hint.dataset.state = state;
    const text = (f && f.hint) || (state === "good" ? "Good: hold still and read the sentence aloud."
      : state === "adjust" ? "Move into the frame and look at the camera." : "Waiting for the camera…");
    if (hint.textContent !== text) hint.textContent = text;
  }

  // --- identify --------------------------------------------------------------------------

  function setBadgeError(text) {
    $("badge-error").textContent = text;
    $("badge").setAttribute("aria-invalid", text ? "true" : "false");
  }

  function badgeProblem(value) {
    if (!value) return "Please enter your badge ID.";
    if (value.length > 64) return "A badge ID has at most 64 characters.";
    if (!PERSON.test(value)) return "Only letters, digits, - _ and . are allowed.";
    return "";
  }

  function submitBadge() {
    const value = $("badge").value.trim();
    const problem = badgeProblem(value);
    if (problem) {
      setBadgeError(problem);
      $("badge").focus();
      return;
    }
    setBadgeError("");
    st.person = value;
    st.consent = false;
    forgetSecret();
    $("consent-person").textContent = value;
    for (const el of document.querySelectorAll(".person-id")) el.textContent = value;
    show("pin");
  }

  // The field the on-screen keypad types into: the focused one of the screen, else its first.
  function keypadTarget() {
    if (st.screen === "identify") return $("badge");
    const screen = $("screen-" + st.screen);
    const focused = document.activeElement;
    if (focused && focused.tagName === "INPUT" && screen.contains(focused)) return focused;
    return screen.querySelector("input");
  }

  function keypadPress(key) {
    const input = keypadTarget();
    if (!input) return;
    const max = Number(input.getAttribute("maxlength")) || 64;
    if (key === "clear") input.value = "";
    else if (key === "back") input.value = input.value.slice(0, -1);
    else if (input.value.length < max) input.value += key;
    if (input === $("badge")) setBadgeError("");
    else setFieldError(st.screen === "pin" ? "pin" : "enrol", "");
  }

  // --- PIN and enrolment ------------------------------------------------------------------

  function setFieldError(which, text) {
    $(`${which}-error`).textContent = text;
    const fields = which === "pin" ? ["pin"] : ["enrol-code", "enrol-pin", "enrol-pin2"];
    for (const id of fields) $(id).setAttribute("aria-invalid", text ? "true" : "false");
  }

  function secretProblem(value) {
    const s = st.secrets;
    if (PIN.test(value) || BADGE_SECRET.test(value)) return "";
    if (!value) return "Please enter your PIN.";
    return /^[0-9]*$/.test(value) ? `A PIN has at least ${s.pin_min_digits} digits.`
      : `A PIN has at least ${s.pin_min_digits} digits; a badge secret at least ${s.badge_min_chars} characters, no spaces.`;
  }

  function afterSecretChosen() {
    renderConsentHistory();
    // consent already given on this visit (a PIN retried after a wrong one): start at once
    if (st.consent && cameraLive() && st.connected) startCheck();
    else show("consent");
  }

  function submitPin() {
    const value = $("pin").value;
    const problem = secretProblem(value);
    if (problem) {
      setFieldError("pin", problem);
      $("pin").focus();
      return;
    }
    setFieldError("pin", "");
    st.secret = value;
    afterSecretChosen();
  }

  function skipPin() {
    st.secret = null;
    $("pin").value = "";
    setFieldError("pin", "");
    afterSecretChosen();
  }

  function submitEnrol() {
    const code = $("enrol-code").value.replace(/[\s-]/g, "");
    const pin = $("enrol-pin").value;
    let problem = "";
    if (!new RegExp(`^[0-9]{${st.secrets.code_digits}}$`).test(code)) {
      problem = `An enrolment code has ${st.secrets.code_digits} digits.`;
    } else if (secretProblem(pin)) problem = secretProblem(pin);
    else if (pin !== $("enrol-pin2").value) problem = "The two PINs are not the same.";
    if (problem) {
      setFieldError("enrol", problem);
      return;
    }
    if (!send({ type: "enrol", person: st.person, code, secret: pin })) {
      setFieldError("enrol", "Not connected to the dashboard.");
      return;
    }
    setFieldError("enrol", "");
    $("enrol-submit").disabled = true;
    st.pendingSecret = pin;
  }

  function onEnrolled(msg) {
    $("enrol-submit").disabled = false;
    if (st.screen !== "enrol" || msg.person !== st.person || !st.pendingSecret) return;
    st.secret = st.pendingSecret;
    st.pendingSecret = null;
    for (const id of ["enrol-code", "enrol-pin", "enrol-pin2"]) $(id).value = "";
    afterSecretChosen();
  }

  function renderConsentHistory() {
    $("consent-history").textContent = st.secret
      ? "With your PIN: this check is compared with your earlier checks and joins your usual range."
      : st.historyNeedsSecret
        ? "Without your PIN: this check is stored but not compared, your earlier checks are not shown, and it does not change your usual range."
        : "";
  }

  // --- check -----------------------------------------------------------------------------

  function setPhase(phase, checkId = null) {
    st.phase = phase;
    st.checkId = checkId;
    st.phaseSince = Date.now();
    st.lastProgressAt = Date.now();
    document.body.dataset.phase = phase;
  }

  function startCheck() {
    if (!st.person || !cameraLive() || !st.connected) return;
    const message = { type: "check.start", person: st.person, consent: true };
    if (st.secret) message.secret = st.secret;
    if (!send(message)) return;
    st.consent = true;
    setPhase("starting");
    renderProgress(0, 0);
    $("sentence").textContent = st.sentence;
    $("capture-status").textContent = "Starting…";
    renderFraming(st.lastFraming);
    show("capture");
  }

  function cancelCheck() {
    if (st.phase !== "idle") send({ type: "check.cancel" });
    // The server answers with check.failed ("the check was cancelled"); the page is no
    // longer waiting for this check, so that message is ignored.
    setPhase("idle");
    resetToIdentify();
  }

  function renderProgress(fraction, elapsed) {
    const f = Math.max(0, Math.min(1, Number(fraction) || 0));
    const bar = $("progress");
    bar.value = f;
    bar.dataset.fraction = f.toFixed(4);
    const left = Math.max(0, Math.ceil(st.duration - (Number(elapsed) || f * st.duration)));
    bar.setAttribute("aria-valuetext", `${Math.round(f * 100)} %, ${left} seconds left`);
    $("time-left").textContent = `${left} s left`;
  }

  function failCheck(reason, retry = true) {
    setPhase("idle");
    $("failed-reason").textContent = reason || "The check could not finish.";
    $("retry").hidden = !retry;
    show("failed");
  }

  // --- result ----------------------------------------------------------------------------

  function fmtDays(days) {
    const n = Number(days);
    return Number.isInteger(n) ? String(n) : n.toFixed(1);
  }

  function showResult(msg) {
    const check = msg.check || {};
    const r = check.result || {};
    const verdict = LABELS[r.verdict] ? r.verdict : "inconclusive";
    $("result-card").dataset.verdict = verdict;
    $("result-label").textContent = r.label || LABELS[verdict];
    $("result-stress").textContent = typeof r.stress === "number"
      ? `Stress index ${Math.round(r.stress)} / 100 (50 = your usual)` : "";
    $("result-reason").textContent = verdict === "inconclusive" || r.reason ? (r.reason || "") : "";
    $("result-advice").textContent = r.advice || "";
    const n = r.checks_in_baseline;
    $("result-baseline").textContent = typeof n === "number" && n > 0
      ? `Compared with your last ${n} check${n === 1 ? "" : "s"}.` : "";
    $("result-note").textContent = r.note || NOTE;
    st.resultDeadline = Date.now() + RESULT_RETURN_S * 1000;
    forgetSecret();  // the visit is over: the PIN leaves this page's memory
    updateCountdown();
    show("result");
    if (msg.personal === false) {
      emptyChart("Your earlier checks are shown only with your PIN.");
      $("history-caption").textContent = "";
      return;
    }
    renderHistory(check, Array.isArray(msg.history) ? msg.history : []);
  }

  function updateCountdown() {
    const left = Math.max(0, Math.ceil((st.resultDeadline - Date.now()) / 1000));
    $("result-countdown").textContent = `Back to the start in ${left} s`;
  }

  function destroyChart() {
    if (st.chart) {
      st.chart.destroy();
      st.chart = null;
    }
  }

  function emptyChart(text) {
    destroyChart();
    const box = $("history-chart");
    box.replaceChildren();
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = text;
    box.appendChild(p);
    box.dataset.points = "0";
  }

  function renderHistory(check, history) {
    const box = $("history-chart");
    const caption = $("history-caption");
    const today = check.result || {};
    const todayStress = typeof today.stress === "number" ? today.stress : null;
    const verdict = LABELS[today.verdict] ? today.verdict : "inconclusive";
    if (!history.length) {
      emptyChart("first check: no usual range yet");
      caption.textContent = "";
      return;
    }
    const rows = history
      .filter((h) => typeof h.started_at === "number" && h.id !== check.id)
      .map((h) => ({ t: h.started_at, stress: typeof (h.result || {}).stress === "number"
        ? h.result.stress : null, today: false }));
    const todayT = typeof check.started_at === "number" ? check.started_at : Date.now() / 1000;
    rows.push({ t: todayT, stress: todayStress, today: true });
    rows.sort((a, b) => a.t - b.t);
    const scored = rows.filter((r) => r.stress !== null).length;
    const earlier = rows.length - 1;
    if (!scored) {
      emptyChart(`No stress values yet: your ${earlier} earlier check${earlier === 1 ? " was"
        : "s were"} inconclusive.`);
      caption.textContent = "";
      return;
    }
    caption.textContent = todayStress === null
      ? `${earlier} earlier check${earlier === 1 ? "" : "s"}. Today (dashed line) was inconclusive: no value.`
      : `${earlier} earlier check${earlier === 1 ? "" : "s"}; today is the large dot.`;
    destroyChart();
    box.replaceChildren();
    box.dataset.points = String(scored);
    const xs = rows.map((r) => r.t);
    const before = rows.map((r) => (r.today ? null : r.stress));
    const now = rows.map((r) => (r.today ? r.stress : null));
    const span = xs[xs.length - 1] - xs[0];
    const rect = box.getBoundingClientRect();
    const width = Math.max(260, Math.floor(rect.width));
    const height = Math.max(180, Math.floor(rect.height));
    const font = "19px system-ui, sans-serif";
    const DAY = 86400;
    const opts = {
      width, height,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: true, range: (u, min, max) => {
          if (min === max) return [min - 86400, max + 86400];
          const pad = (max - min) * 0.06;
          return [min - pad, max + pad];
        } },
        y: { range: [0, 100] },
      },
      axes: [
        { stroke: COLORS.axis, font, grid: { stroke: COLORS.grid }, ticks: { stroke: COLORS.grid },
          space: 110, size: 46,
          incrs: span >= 2 * DAY ? [DAY, 2 * DAY, 3 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY, 365 * DAY]
            : [60, 300, 600, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, DAY],
          values: (u, splits) => splits.map((t) => {
            const d = new Date(t * 1000);
            return span < 2 * 86400
              ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false })
              : d.toLocaleDateString([], { day: "numeric", month: "short" });
          }) },
        { stroke: COLORS.axis, font, grid: { stroke: COLORS.grid }, ticks: { stroke: COLORS.grid },
          size: 56, splits: () => [0, 25, 50, 75, 100] },
      ],
      series: [
        {},
        { label: "earlier checks", stroke: COLORS.line, width: 3, spanGaps: true,
          points: { show: true, size: 11, fill: COLORS.line, stroke: COLORS.line } },
        { label: "today", stroke: COLORS[verdict], width: 0, paths: () => null,
          points: { show: true, size: 24, width: 4, fill: COLORS[verdict], stroke: "#f0f3f6" } },
      ],
      hooks: {
        draw: [(u) => {
          // 50 = the person's usual
          const ctx = u.ctx;
          const y = Math.round(u.valToPos(50, "y", true)) + 0.5;
          ctx.save();
          ctx.setLineDash([10, 8]);
          ctx.strokeStyle = "#6e7d8b";
          ctx.lineWidth = 2;
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
          if (todayStress === null) {
            // today was inconclusive: mark when, without a value
            const x = Math.round(u.valToPos(todayT, "x", true)) + 0.5;
            ctx.strokeStyle = COLORS.inconclusive;
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        }],
      },
    };
    st.chart = new uPlot(opts, [xs, before, now], box);
  }

  function resizeChart() {
    if (!st.chart) return;
    const box = $("history-chart");
    const rect = box.getBoundingClientRect();
    st.chart.setSize({ width: Math.max(260, Math.floor(rect.width)),
                       height: Math.max(180, Math.floor(rect.height)) });
  }

  // --- server messages -------------------------------------------------------------------

  function handle(msg) {
    switch (msg.type) {
      case "kiosk.hello":
        st.duration = Number(msg.duration_s) || 45;
        st.sentence = msg.sentence || "";
        st.retentionDays = msg.retention_days ?? null;
        st.storesMedia = msg.stores_media === true;
        st.storesTranscript = typeof msg.stores_transcript === "boolean" ? msg.stores_transcript : null;
        st.historyNeedsSecret = msg.history_needs_secret !== false;
        if (msg.secrets && typeof msg.secrets === "object") st.secrets = { ...st.secrets, ...msg.secrets };
        st.streamState = msg.stream_state || "absent";
        st.lastStreamAt = Date.now();
        renderHello();
        onConnected();
        // A check this page ran before the connection dropped was cancelled by the server
        // when the old socket closed: nothing to do here.
        break;
      case "kiosk.preview":
        st.streamState = msg.stream_state || st.streamState;
        st.lastStreamAt = Date.now();
        st.busyAt = msg.busy === true ? Date.now() : 0;
        if (st.phase !== "running" && msg.busy !== true) renderFraming(msg);
        updateCamera();
        break;
      case "enrolled":
        onEnrolled(msg);
        break;
      case "check.started":
        if (st.phase !== "starting") break;  // not this page's (or already cancelled)
        setPhase("running", msg.check_id);
        if (msg.duration_s) st.duration = Number(msg.duration_s);
        if (msg.sentence) {
          st.sentence = msg.sentence;
          $("sentence").textContent = msg.sentence;
        }
        $("capture-status").textContent = "Recording: keep looking at the camera.";
        renderProgress(0, 0);
        break;
      case "check.progress":
        if (st.phase !== "running" || msg.check_id !== st.checkId) break;
        st.lastProgressAt = Date.now();
        st.lastStreamAt = Date.now();
        st.streamState = "live";
        renderProgress(msg.fraction, msg.elapsed_s);
        renderFraming({ face: msg.face, brightness: msg.brightness, hint: msg.hint,
                        stream_state: "live" });
        if ((Number(msg.fraction) || 0) >= 1) {
          $("capture-status").textContent = "Done recording: working out your result…";
        }
        break;
      case "check.result":
        if (st.phase !== "running" || !msg.check || msg.check.id !== st.checkId) break;
        setPhase("idle");
        showResult(msg);
        break;
      case "check.failed":
        if (st.phase === "idle" || (st.checkId !== null && msg.check_id !== st.checkId)) break;
        failCheck(msg.reason, msg.retry !== false);
        break;
      case "error":
        onError(msg);
        break;
      case "pong":
        st.sawPong = true;
        break;
      default:
        break;  // keys and types may be added: ignore what this page does not know
    }
  }

  function onError(msg) {
    const reason = msg.reason || "The server refused.";
    if (st.phase === "starting" && (msg.code === "secret" || msg.code === "locked")) {
      // A wrong PIN (or a lock): back to the PIN screen; the consent of this visit stands.
      setPhase("idle");
      st.secret = null;
      $("pin").value = "";
      show("pin");
      setFieldError("pin", reason);
    } else if (st.phase === "starting") {
      failCheck(reason);
    } else if (st.screen === "enrol" && $("enrol-submit").disabled) {
      $("enrol-submit").disabled = false;
      st.pendingSecret = null;
      setFieldError("enrol", reason);
    } else {
      notice(`The server said: ${reason}`);
    }
  }

  function mediaText() {
    // Written from the hello's facts only: what it does not state is not claimed.
    if (st.storesMedia) return "This kiosk is set to keep video or audio of the check.";
    if (st.storesTranscript === false) {
      return "Never video, audio or your words: the picture and the sound are analysed live " +
        "(what you say may be turned into text to measure its tone) and none of it is kept.";
    }
    if (st.storesTranscript === true) {
      return "Never video or audio, but the words you say are kept as text with the check.";
    }
    return "Never video or audio: the picture and the sound are analysed live and not kept.";
  }

  function renderHello() {
    for (const el of document.querySelectorAll(".duration")) el.textContent = String(Math.round(st.duration));
    for (const el of document.querySelectorAll(".pin-min")) el.textContent = String(st.secrets.pin_min_digits);
    $("consent-media").textContent = mediaText();
    renderConsentHistory();
    $("consent-retention").textContent = typeof st.retentionDays === "number"
      ? `The half-second scores are kept for ${fmtDays(st.retentionDays)} day${st.retentionDays === 1 ? "" : "s"}, then only the summary.`
      : "The half-second scores are kept for a limited time, then only the summary.";
    if (st.phase === "idle") $("sentence").textContent = st.sentence;
    renderProgress(0, 0);
  }

  function notice(text) {
    const foot = document.querySelector(".foot");
    foot.textContent = text;
    foot.classList.add("camera-bad");
    clearTimeout(st.noticeTimer);
    st.noticeTimer = setTimeout(() => {
      foot.textContent = NOTE;
      foot.classList.remove("camera-bad");
    }, 8000);
  }

  // --- connection ------------------------------------------------------------------------

  function send(obj) {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) {
      st.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  function setConnPill(text, cls) {
    const pill = $("connection");
    pill.textContent = text;
    pill.className = "pill " + cls;
    document.body.dataset.connection = cls === "pill-ok" ? "open" : "closed";
  }

  function connect() {
    st.reconnectTimer = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/ws/kiosk`);
    } catch (err) {
      lost(null);
      return;
    }
    st.ws = ws;
    st.sawPong = false;
    ws.onmessage = (event) => {
      if (st.ws !== ws) return;
      st.lastMessageAt = Date.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (msg && typeof msg === "object") handle(msg);
    };
    ws.onclose = () => {
      if (st.ws === ws) lost(ws);
    };
  }

  function onConnected() {
    st.connected = true;
    st.everConnected = true;
    st.attempt = 0;
    st.lastMessageAt = Date.now();
    setConnPill("connected", "pill-ok");
    updateCamera();
    hideOverlay();
  }

  function lost(ws) {
    if (ws && st.ws === ws) {
      ws.onclose = null;
      ws.onmessage = null;
      try { ws.close(); } catch (err) { /* already closing */ }
    }
    st.ws = null;
    const wasConnected = st.connected;
    st.connected = false;
    setConnPill("reconnecting…", "pill-bad");
    if (st.phase !== "idle") {
      // the server cancels the check when it sees this socket close
      failCheck("The connection to the server was lost: the check could not finish.", true);
    }
    $("enrol-submit").disabled = false;
    updateCamera();
    const delay = Math.min(10000, 500 * 2 ** st.attempt) * (0.75 + Math.random() * 0.5);
    st.attempt += 1;
    st.reconnectAt = Date.now() + delay;
    st.reconnectTimer = setTimeout(connect, delay);
    if (wasConnected || st.everConnected || Date.now() - st.loadedAt > OVERLAY_GRACE_MS) showOverlay();
    if (st.attempt >= 2) probeAuth();
  }

  async function probeAuth() {
    // A WebSocket refusal has no readable status: ask the page itself why.
    try {
      const res = await fetch(location.pathname, { cache: "no-store", credentials: "same-origin" });
      if (res.status === 401 || res.status === 403) {
        $("reconnecting-detail").textContent = res.status === 401
          ? "This kiosk is not signed in: open a new sign-in link from `wellmon login kiosk` on it."
          : "This sign-in may not open the kiosk: open a link from `wellmon login kiosk` on it.";
      }
    } catch (err) {
      // the server is not reachable at all: the generic text stays
    }
  }

  function showOverlay() {
    const overlay = $("reconnecting");
    if (!overlay.hidden) return;
    overlay.hidden = false;
    document.querySelector("main").inert = true;
    $("reconnecting-title").focus({ preventScroll: true });
  }

  function hideOverlay() {
    const overlay = $("reconnecting");
    if (overlay.hidden) return;
    overlay.hidden = true;
    document.querySelector("main").inert = false;
    $("reconnecting-detail").textContent = "The connection to the dashboard was lost. Trying again.";
    focusScreen();
  }

  // --- timers ----------------------------------------------------------------------------

  function tick() {
    const now = Date.now();
    if (st.connected && now - st.lastPingAt >= PING_MS) {
      st.lastPingAt = now;
      send({ type: "ping" });
    }
    if (st.connected && st.sawPong && now - st.lastMessageAt > DEAD_MS) lost(st.ws);
    if (!st.connected && !st.everConnected && now - st.loadedAt > OVERLAY_GRACE_MS) showOverlay();
    if (!$("reconnecting").hidden && st.reconnectTimer) {
      const left = Math.max(0, Math.ceil((st.reconnectAt - now) / 1000));
      $("reconnecting-title").textContent = left > 0 ? `Reconnecting… (${left} s)` : "Reconnecting…";
    } else if (!$("reconnecting").hidden) {
      $("reconnecting-title").textContent = "Reconnecting…";
    }
    if (st.phase === "starting" && now - st.phaseSince > START_TIMEOUT_MS) {
      send({ type: "check.cancel" });
      failCheck("The server did not start the check in time.");
    }
    if (st.phase === "running" && now - st.lastProgressAt > PROGRESS_TIMEOUT_MS) {
      send({ type: "check.cancel" });
      failCheck("The check stopped receiving data from the camera.");
    }
    if (st.screen === "result") {
      updateCountdown();
      if (now >= st.resultDeadline) resetToIdentify();
    }
    if (["pin", "enrol", "consent", "failed"].includes(st.screen)
        && now - st.lastInteraction > IDLE_RETURN_S * 1000) {
      resetToIdentify();
    }
    updateCamera();
  }

  // --- input -----------------------------------------------------------------------------

  function onKeydown(e) {
    st.lastInteraction = Date.now();
    if (!$("reconnecting").hidden) return;
    if (e.key === "Escape") {
      e.preventDefault();
      if (st.screen === "identify") {
        $("badge").value = "";
        setBadgeError("");
        $("badge").focus();
      } else if (["pin", "enrol", "consent"].includes(st.screen)) resetToIdentify();
      else if (st.screen === "capture") cancelCheck();
      else if (st.screen === "result") resetToIdentify();
      else if (st.screen === "failed") resetToIdentify();
      return;
    }
    if (st.screen !== "identify" || e.target === $("badge") || e.ctrlKey || e.metaKey || e.altKey) return;
    // A badge scanner types wherever the focus is: steer its characters into the field.
    if (e.key === "Enter" && !(e.target instanceof HTMLButtonElement)) {
      e.preventDefault();
      submitBadge();
    } else if (e.key.length === 1 && !(e.target instanceof HTMLButtonElement && e.key === " ")) {
      e.preventDefault();
      const input = $("badge");
      if (input.value.length < 64) input.value += e.key;
      setBadgeError("");
      input.focus();
    } else if (e.key === "Backspace" && !(e.target instanceof HTMLInputElement)) {
      e.preventDefault();
      keypadPress("back");
    }
  }

  function bind() {
    $("badge-form").addEventListener("submit", (e) => {
      e.preventDefault();
      submitBadge();
    });
    $("badge").addEventListener("input", () => setBadgeError(""));
    for (const slot of document.querySelectorAll(".keypad-slot")) {
      const pad = $("keypad").cloneNode(true);
      pad.removeAttribute("id");
      slot.appendChild(pad);
    }
    for (const key of document.querySelectorAll(".keypad .key")) {
      // keep the focus (and a scanner's input) in the field; no native keyboard pops up
      key.addEventListener("mousedown", (e) => e.preventDefault());
      key.addEventListener("click", () => keypadPress(key.dataset.key));
    }
    $("pin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      submitPin();
    });
    $("pin").addEventListener("input", () => setFieldError("pin", ""));
    $("pin-skip").addEventListener("click", skipPin);
    $("pin-enrol").addEventListener("click", () => {
      setFieldError("enrol", "");
      show("enrol");
    });
    $("pin-cancel").addEventListener("click", resetToIdentify);
    $("enrol-form").addEventListener("submit", (e) => {
      e.preventDefault();
      submitEnrol();
    });
    $("enrol-back").addEventListener("click", () => show("pin"));
    $("consent-accept").addEventListener("click", startCheck);
    $("consent-cancel").addEventListener("click", resetToIdentify);
    $("cancel").addEventListener("click", cancelCheck);
    $("done").addEventListener("click", resetToIdentify);
    $("retry").addEventListener("click", startCheck);
    $("failed-cancel").addEventListener("click", resetToIdentify);
    document.addEventListener("keydown", onKeydown);
    document.addEventListener("pointerdown", () => { st.lastInteraction = Date.now(); });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(resizeChart, 100);
    });
  }

  bind();
  setPhase("idle");
  show("identify");
  connect();
  setInterval(tick, 1000);
})();
