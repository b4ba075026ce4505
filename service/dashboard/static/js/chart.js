// Line charts on uPlot (vendored): curves with their own x values are aligned by uPlot.join.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { clear, fmt, h } from "./dom.js";

export const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
  "#db2777", "#65a30d", "#4f46e5", "#a16207"];

/** The shapes of curve marks: what each means is the caller's (its legend says). */
export const MARKS = {
  promoted: { glyph: "\u25B2", draw: triangle },
  pruned: { glyph: "\u2715", draw: cross },
  waiting: { glyph: "\u25CB", draw: ring },
};

export function color(i) {
  return COLORS[i % COLORS.length];
}

/**
 * A chart card. curves: [{label, xs, ys, color?, dash?, width?, band?, marks?}] where band is
 * {lo: [...], hi: [...]} on the same xs (drawn as a shaded interval) and marks is
 * [{x, kind}] (a MARKS shape drawn on the curve at its last point at or before x).
 * set()'s rules: [{x, label}], dashed vertical lines across the plot (an adaptive sweep's
 * rungs).
 */
export class Chart {
  constructor(title, { height = 240, xLabel = "step", logY = false, xFromZero = false } = {}) {
    this.title = title;
    this.xFromZero = xFromZero;
    this.logY = logY;
    this.height = height;
    this.xLabel = xLabel;
    this.plot = null;
    this.curves = [];
    this.rules = [];
    this.legend = h("div", { class: "legend" });
    this.el = h("div", { class: "chart", "data-chart": title }, h("h3", {}, title), this.legend);
    this.pending = false;
  }

  set(curves, { rules = [] } = {}) {
    this.curves = curves;
    this.rules = rules;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const visible = this.curves.filter((c) => c.xs.length);
    this.visible = visible;
    this.el.dataset.points = String(visible.reduce((n, c) => n + c.xs.length, 0));
    this.el.dataset.marks = JSON.stringify(placedMarks(visible));
    if (!visible.length) {
      this.empty();
      return;
    }
    const key = visible.map((c) => `${c.label}|${Boolean(c.band)}`).join("\n") + this.logY;
    const data = this.data(visible);
    if (this.plot && this.key === key) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.key = key;
    this.plot = new uPlot(this.options(visible), data, this.el);
    this.renderLegend(visible);
  }

  /**
   * No point yet (a view opened before its runs report): no plot, since uPlot.join([])
   * throws and a plot of nothing has no scale. The card stays, and the next set() with
   * points draws it from scratch.
   */
  empty() {
    this.plot?.destroy();
    this.plot = null;
    this.key = null;
    clear(this.legend);
    this.el.dataset.drawn = "empty";
  }

  /** Our own legend: one swatch per curve (none for CI bounds), wrapping for many curves. */
  renderLegend(curves) {
    const shown = curves.length > 40 ? curves.filter((c) => c.band) : curves;
    clear(this.legend, shown.map((c, i) => {
      const swatch = h("i");
      swatch.style.background = c.color || color(i);
      return h("span", { class: "key" }, swatch, c.label);
    }));
  }

  /** The rules and the curves' marks, over the plot (read at each draw: setData keeps them current). */
  overlay(u) {
    const ctx = u.ctx;
    const px = uPlot.pxRatio;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.setLineDash([4 * px, 4 * px]);
    ctx.strokeStyle = "#94a3b8";
    ctx.lineWidth = px;
    for (const r of this.rules) {
      const x = Math.round(u.valToPos(r.x, "x", true)) + 0.5;
      if (x < left || x > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    this.visible.forEach((c, i) => {
      for (const m of placedMarks([c])) {
        const x = u.valToPos(m.x, "x", true);
        const y = u.valToPos(m.y, "y", true);
        MARKS[m.kind].draw(ctx, x, y, 5 * px, c.color || color(i), px);
      }
    });
    ctx.restore();
  }

  data(curves) {
    const tables = [];
    for (const c of curves) {
      tables.push([c.xs, c.ys]);
      if (c.band) tables.push([c.xs, c.band.lo], [c.xs, c.band.hi]);
    }
    return tables.length === 1 ? tables[0] : uPlot.join(tables);
  }

  options(curves) {
    const series = [{ label: this.xLabel }];
    const bands = [];
    curves.forEach((c, i) => {
      const stroke = c.color || color(i);
      series.push({ label: c.label, stroke, width: c.width ?? 1.5, dash: c.dash, spanGaps: true,
        points: { show: c.xs.length < 3 } });
      if (c.band) {
        const lo = series.length;
        series.push({ label: `${c.label} CI low`, stroke: "transparent", spanGaps: true,
          points: { show: false } });
        series.push({ label: `${c.label} CI high`, stroke: "transparent", spanGaps: true,
          points: { show: false } });
        bands.push({ series: [lo + 1, lo], fill: `${stroke}33` });
      }
    });
    const width = Math.max(320, this.el.clientWidth - 12 || 440);
    const hooks = { draw: [(u) => this.overlay(u), () => (this.el.dataset.drawn = String(Date.now()))] };
    // Ratios like an SNR span decades as the noise anneals to zero: a log axis then.
    const log = this.logY && curves.every((c) => c.ys.every((v) => v == null || v > 0));
    const pow10 = (v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
    const yAxis = log
      ? { size: 64, filter: (u, splits) => splits.map((v) => (pow10(v) ? v : null)),
        values: (u, vals) => vals.map((v) => (v == null ? "" : `1e${Math.round(Math.log10(v))}`)) }
      : { size: 64, splits: linearSplits, values: (u, vals) => vals.map((v) => fmt(v, 3)) };
    const axes = [{ splits: linearSplits }, yAxis];
    return { width, height: this.height, series, bands, hooks, axes, legend: { show: false },
      scales: { x: this.xScale(), y: log ? { distr: 3 } : {} } };
  }

  /** Steps from 0 when asked (a sweep's curves, whose first rung may be their first point). */
  xScale() {
    if (!this.xFromZero) return { time: false };
    return { time: false, range: (u, min, max) => [Math.min(0, min), max > 0 ? max : 1] };
  }
}

/**
 * The ticks of a linear axis: the multiples of `incr` in [min, max]. uPlot's own loop
 * (numAxisSplits) adds `incr` until it passes max, and never ends where the step is lost in
 * float rounding at the scale's magnitude: the page then dies with "RangeError: Invalid array
 * length" (leeoniya/uPlot#1084, left to callers; seen on a run's page while its curves
 * streamed). Counted here instead, so a degenerate scale gets no ticks rather than a dead page.
 */
export function linearSplits(u, axisIdx, min, max, incr) {
  if (!(incr > 0) || !Number.isFinite(min) || !Number.isFinite(max) || !(max >= min)) return [];
  const first = Math.ceil(min / incr - 1e-9);  // 0.7 / 0.1 is 6.999...: 0.7 is a tick
  const count = Math.floor(max / incr + 1e-9) - first + 1;
  // uPlot picks incr so that ticks sit at least a label apart: more than a few hundred means
  // incr is below the float resolution of min and max.
  if (!(count >= 1 && count <= 500) || !Number.isSafeInteger(first)) return [];
  const decimals = Math.min(100, Math.max(0, Math.ceil(-Math.log10(incr)) + 1));
  const splits = [];
  for (let i = 0; i < count; i++) {
    const v = Number(((first + i) * incr).toFixed(decimals));
    if (v !== splits[splits.length - 1]) splits.push(Object.is(v, -0) ? 0 : v);
  }
  return splits;
}

/** Each curve's marks with their y: the curve's value at its last point at or before x. */
function placedMarks(curves) {
  const out = [];
  for (const c of curves) {
    for (const m of c.marks || []) {
      let at = -1;
      c.xs.forEach((x, i) => { if (x <= m.x && c.ys[i] != null) at = i; });
      if (at >= 0) out.push({ label: c.label, kind: m.kind, x: m.x, y: c.ys[at] });
    }
  }
  return out;
}

function triangle(ctx, x, y, r, stroke, px) {
  ctx.beginPath();  // a filled shape reads smaller than a stroke: larger than the cross
  ctx.moveTo(x, y - r * 1.7);
  ctx.lineTo(x + r * 1.4, y + r * 0.9);
  ctx.lineTo(x - r * 1.4, y + r * 0.9);
  ctx.closePath();
  ctx.fillStyle = stroke;
  ctx.fill();
  ctx.lineWidth = 1.5 * px;
  ctx.strokeStyle = "#fff";
  ctx.stroke();
}

function cross(ctx, x, y, r, stroke, px) {
  ctx.beginPath();
  ctx.moveTo(x - r, y - r);
  ctx.lineTo(x + r, y + r);
  ctx.moveTo(x + r, y - r);
  ctx.lineTo(x - r, y + r);
  ctx.lineWidth = 4 * px;
  ctx.strokeStyle = "#fff";
  ctx.stroke();
  ctx.lineWidth = 2 * px;
  ctx.strokeStyle = stroke;
  ctx.stroke();
}

function ring(ctx, x, y, r, stroke, px) {
  ctx.beginPath();
  ctx.arc(x, y, r * 0.9, 0, 2 * Math.PI);
  ctx.fillStyle = "#fff";
  ctx.fill();
  ctx.lineWidth = 2 * px;
  ctx.strokeStyle = stroke;
  ctx.stroke();
}
