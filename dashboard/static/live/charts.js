// uPlot charts of a stream card, with a legend of our own (colour swatch, name, value at the
// cursor or the newest value) so that every chart reads the same way.
/* global uPlot */

import { clock } from "./format.js";

const MUTED = "#9aa7b4";
const GRID = "#26313c";
const AXIS_FONT = "12px system-ui, sans-serif";
const AXIS_SIZE = 52;

function compact(u, splits) {
  return splits.map((v) => (v === null ? "" : Number(v.toPrecision(3)).toString()));
}

function timeValues(u, splits) {
  return splits.map((t) => clock(t));
}

export function axis(scale, side, extra = {}) {
  return { scale, side, stroke: MUTED, font: AXIS_FONT, size: AXIS_SIZE, gap: 4, space: 18,
           grid: { stroke: GRID, width: 1, show: side === 3 }, ticks: { stroke: GRID, size: 4 },
           values: compact, ...extra };
}

// An axis on the right that only keeps the plots of a card aligned.
export function spacerAxis(scale) {
  return axis(scale, 1, { values: (u, s) => s.map(() => ""), ticks: { show: false },
                          grid: { show: false } });
}

// A shaded horizontal band (e.g. the stress index's "your usual" 40–60) under the series.
export function bandHook(scale, lo, hi, fill, label) {
  return (u) => {
    const ctx = u.ctx, { left, width } = u.bbox;
    const top = u.valToPos(hi, scale, true), bottom = u.valToPos(lo, scale, true);
    ctx.save();
    ctx.fillStyle = fill;
    ctx.fillRect(left, top, width, bottom - top);
    if (label) {
      const px = window.devicePixelRatio || 1;
      ctx.fillStyle = MUTED;
      ctx.font = `${Math.round(11 * px)}px system-ui, sans-serif`;
      ctx.textBaseline = "top";
      ctx.fillText(label, left + 4 * px, top + 2 * px);
    }
    ctx.restore();
  };
}

function zeroLineHook(scale) {
  return (u) => {
    const ctx = u.ctx, y = Math.round(u.valToPos(0, scale, true)) + 0.5;
    ctx.save();
    ctx.strokeStyle = "#3d4b59";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.restore();
  };
}

// A legend: one item per entry ({label, color, kind: "line" | "area" | "band"}).
export class Legend {
  constructor(el, items) {
    this.el = el;
    this.values = items.map((item) => {
      const span = document.createElement("span");
      span.className = "lg-item";
      const sw = document.createElement("i");
      sw.className = "sw sw-" + (item.kind || "line");
      sw.style.background = item.color;
      if (item.dash) sw.classList.add("sw-dash");
      const name = document.createElement("span");
      name.className = "lg-name";
      name.textContent = item.label;
      const val = document.createElement("b");
      val.className = "lg-val";
      span.append(sw, name, val);
      el.appendChild(span);
      return val;
    });
    this.time = document.createElement("span");
    this.time.className = "lg-time";
    el.appendChild(this.time);
  }

  set(texts, timeText) {
    texts.forEach((text, i) => {
      if (this.values[i] && this.values[i].textContent !== text) this.values[i].textContent = text;
    });
    if (this.time.textContent !== timeText) this.time.textContent = timeText;
  }
}

// One chart. `spec`: {height: {grid, full}, scales, axes, series, band, zero, legend}.
// `view()` gives the x range shown; `onCursor(idx)` is called when the cursor moves.
export class Chart {
  constructor(el, legendEl, spec, view, syncKey, onCursor) {
    this.el = el;
    this.spec = spec;
    this.full = false;
    this.legend = new Legend(legendEl, spec.legend);
    const drawClear = [];
    if (spec.band) drawClear.push(bandHook(...spec.band));
    if (spec.zero) drawClear.push(zeroLineHook(spec.zero));
    const opts = {
      width: Math.max(200, el.clientWidth || 300),
      height: spec.height.grid,
      legend: { show: false },
      cursor: { sync: { key: syncKey }, drag: { x: false, y: false, setScale: false },
                points: { size: 7 } },
      scales: { x: { time: true, range: () => { const v = view(); return [v.min, v.max]; } },
                ...spec.scales },
      axes: [{ stroke: MUTED, font: AXIS_FONT, grid: { stroke: GRID, width: 1 },
               ticks: { stroke: GRID, size: 4 }, space: 80, values: timeValues, size: 30 },
             ...spec.axes],
      series: [{}, ...spec.series],
      hooks: { drawClear, setCursor: [(u) => onCursor(u.cursor.idx ?? null)] },
    };
    this.u = new uPlot(opts, spec.empty(), el);
    this.width = opts.width;
  }

  setData(data) {
    this.u.setData(data, true);
  }

  resize(full = this.full) {
    this.full = full;
    const width = Math.floor(this.el.clientWidth);
    const height = full ? this.spec.height.full : this.spec.height.grid;
    if (width < 50) return;  // hidden (another card is open full size)
    if (width !== this.width || height !== this.u.height) {
      this.width = width;
      this.u.setSize({ width, height });
    }
  }
}
