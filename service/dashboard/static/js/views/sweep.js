// A sweep: aggregate table, paired comparisons, each arm's mean curve with a CI band.
import { api, qs } from "../api.js";
import { Chart, MARKS, color } from "../chart.js";
import { clear, errorBox, fmt, h, labelled, link, select, statusBadge, table, tags } from "../dom.js";
import { meanBand } from "../stats.js";

const REFRESH_MS = 4000;
const ACTIVE = new Set(["queued", "running", "cancelling"]);

export async function sweepView(root, ctx, id, params = new URLSearchParams()) {
  const view = { id, metric: params.get("metric"), baseline: null, perSeed: params.get("seeds") === "1",
    sweep: null, names: [],
    chart: new Chart("curves", { height: 320, xFromZero: true }), els: {} };
  view.els.head = h("div", { id: "sweep-header" });
  view.els.tables = h("div", { id: "sweep-tables" });
  view.els.controls = h("div", { class: "controls", id: "sweep-controls" });
  view.els.experiments = h("div", { id: "sweep-experiments" });
  view.els.caption = h("p", { id: "curves-caption", class: "muted" });
  clear(root, view.els.head, view.els.controls, view.els.tables, h("h2", {}, "Curves"),
    h("div", { class: "charts wide" }, view.chart.el), view.els.caption,
    h("h2", {}, "Experiments"), view.els.experiments);
  let timer = null;
  const tick = async () => {
    const active = await load(view);
    if (active && !timer) timer = setInterval(tick, REFRESH_MS);
    if (!active && timer) clearInterval(timer);
  };
  ctx.onLeave(() => timer && clearInterval(timer));
  view.reload = tick;
  await tick();
}

async function load(view) {
  // The curves do not wait for the sweep when the metric is known (it is in the URL).
  const early = view.metric ? fetchCurves(view) : null;
  early?.catch(() => {}); // awaited below; no unhandled rejection meanwhile
  try {
    view.sweep = await api(`/v1/sweeps/${encodeURIComponent(view.id)}` +
      qs({ metric: view.metric, baseline: view.baseline }));
  } catch (err) {
    clear(view.els.tables, errorBox(err));
    return false;
  }
  view.metric = view.metric || view.sweep.metric;
  render(view);
  if (!view.names.length) {
    metricNames(view.sweep).then((names) => {
      view.names = names;
      if (names.length) render(view);
    }).catch(() => {});
  }
  await loadCurves(view, early);
  return view.sweep.experiments.some((e) => ACTIVE.has(e.status));
}

/** The metric names of the sweep's first experiment (what the picker offers). */
async function metricNames(sweep) {
  const first = sweep.experiments[0];
  if (!first) return [];
  const body = await api(`/v1/experiments/${encodeURIComponent(first.id)}/metric-names`);
  return body.names;
}

function render(view) {
  const s = view.sweep;
  clear(view.els.head, h("h1", { id: "sweep-name" }, s.name),
    h("div", { class: "meta" }, h("span", {}, "id ", h("code", {}, s.id)),
      h("span", {}, `${s.size} experiments: `,
        Object.entries(s.status_counts).map(([k, n]) => [statusBadge(k), ` ${n} `])),
      h("span", {}, `seeds ${s.seeds.join(", ")}`)));
  const names = [...new Set([s.metric, view.metric, ...view.names])].filter(Boolean).sort();
  const arms = s.aggregate.map((a) => a.label);
  const baseline = s.comparisons[0]?.baseline_label || arms[0] || "";
  clear(view.els.controls,
    labelled("metric", select("metric", names, view.metric, (v) => { view.metric = v; view.reload(); })),
    labelled("baseline", select("baseline", arms, baseline, (v) => { view.baseline = v; view.reload(); })),
    h("label", {}, "per-seed lines", h("input", { type: "checkbox", name: "per-seed", checked: view.perSeed,
      onchange: (e) => { view.perSeed = e.target.checked; drawCurves(view); } })));
  const num = (key) => ({ title: key, num: true, cell: (r) => cell(r[key]) });
  const counts = ["n_pending", "n_failed", "n_cancelled", ...(s.search ? ["n_pruned"] : []), "n_missing"];
  const aggregate = table([{ title: "arm", cell: (r) => r.label }, num("n"), num("mean"), num("std"),
    num("ci_low"), num("ci_high"), ...counts.map(num)],
  s.aggregate, { class: "aggregate", row: (r) => ({ "data-label": r.label }) });
  const comparisons = table([{ title: "arm", cell: (r) => r.label },
    { title: "baseline", cell: (r) => r.baseline_label }, num("n_pairs"), num("mean_diff"),
    num("ci_low"), num("ci_high"), num("p_value"), num("p_holm")], s.comparisons,
  { class: "comparisons", row: (r) => ({ "data-label": r.label }) });
  const search = s.search;
  const rule = search?.halving || search;  // an Optuna search's rungs follow its halving block
  const kind = search?.kind === "optuna" ? "asha" : search?.kind;
  const trials = s.n_trials != null ? [h("p", { class: "trials" },
    `Optuna ${search.sampler} on ${search.metric} (${search.mode}): `
    + `${s.n_trials - s.trials_left} of ${s.n_trials} trials asked, ${search.parallel} at a time`)] : [];
  const rungs = s.rungs.length ? [h("h2", {}, `Rungs: ${kind} on ${search.metric} (eta ${rule.reduction_factor})`),
    table([{ title: "rung", cell: (r) => String(r.rung) },
      { title: rule.unit, num: true, cell: (r) => String(r.resource) },
      { title: "step", num: true, cell: (r) => (r.step == null ? "end" : String(r.step)) },
      num("reached"), num("waiting"), num("promoted"), num("pruned")], s.rungs,
    { class: "rungs", row: (r) => ({ "data-rung": String(r.rung) }) })] : [];
  clear(view.els.tables, ...trials, ...rungs,
    h("h2", {}, `Aggregate of ${view.metric} (${Math.round(s.confidence * 100)}% CI)`),
    aggregate, h("h2", {}, `Paired comparisons with the baseline (Holm over ${s.family ? s.family.size : 0} tests)`),
    s.comparisons.length ? comparisons : h("p", { class: "muted" }, "One arm only: nothing to compare."));
  clear(view.els.experiments, table([
    { title: "experiment", cell: (e) => link(e.label + ` seed ${e.seed}`, "experiments", e.id) },
    { title: "status", cell: (e) => [statusBadge(e.status), e.status_reason ? ` ${e.status_reason}` : ""] },
    { title: view.metric, num: true, cell: (e) => cell(e.value) }], s.experiments, { class: "members" }),
  h("p", {}, tags(s.tags)));
}

/** A number's text, with the exact value kept in data-value for checks and copy. */
function cell(x) {
  return h("span", { "data-value": x == null ? "" : String(x), title: x == null ? "" : String(x) }, fmt(x));
}

/** One request for every curve of the sweep: columnar, downsampled to the chart's width. */
function fetchCurves(view) {
  const width = Math.max(200, Math.round(view.chart.el.clientWidth || 800));
  return api("/v1/metrics/series" +
    qs({ sweep_id: view.id, name: view.metric, max_points: width, format: "columnar" }));
}

async function loadCurves(view, pending = null) {
  const metric = view.metric;
  const body = await (pending || fetchCurves(view));
  if (metric !== view.metric) return; // the picker moved on meanwhile
  view.body = body;
  drawCurves(view);
}

function drawCurves(view) {
  const body = view.body;
  if (!body) return;
  const members = new Map(view.sweep.experiments.map((e) => [e.id, e]));
  const byArm = new Map();
  const marks = new Map();
  for (const [id, series] of Object.entries(body.experiments)) {
    const cols = series[view.metric] || { step: [], value: [] };
    const label = armOf(body, id, members);
    if (!byArm.has(label.arm)) byArm.set(label.arm, []);
    byArm.get(label.arm).push({ seed: label.seed, xs: cols.step, ys: cols.value });
    if (members.has(id)) marks.set(label.arm, rungMarks(members.get(id), marks.get(label.arm)));
  }
  const curves = [];
  [...byArm.keys()].sort().forEach((arm, i) => {
    const seeds = byArm.get(arm);
    const band = meanBand(seeds);
    curves.push({ label: `${arm} (mean, n=${seeds.length})`, xs: band.xs, ys: band.mean, color: color(i),
      width: 2, band: { lo: band.lo, hi: band.hi }, marks: marks.get(arm) || [] });
    if (view.perSeed) {
      for (const s of seeds) curves.push({ label: `${arm} seed ${s.seed}`, xs: s.xs, ys: s.ys, color: color(i), width: 0.7 });
    }
  });
  const rungs = view.sweep.rungs.filter((r) => r.step != null);
  view.chart.set(curves, { rules: rungs.map((r) => ({ x: r.step, label: `rung ${r.rung}` })) });
  caption(view, rungs);
}

/**
 * An arm's marks with its member `e`'s added: the rung steps where it was promoted, and the
 * one where it stopped (pruned, or paused waiting for the rung's decision). A rung promotes
 * or prunes an arm's seeds together, so one mark per arm, kind and step.
 */
function rungMarks(e, marks = []) {
  const at = new Map(marks.map((m) => [`${m.kind}@${m.x}`, m]));
  for (const x of e.promoted_at || []) at.set(`promoted@${x}`, { x, kind: "promoted" });
  const stopped = { pruned: "pruned", paused: "waiting" }[e.status];
  if (stopped && e.rung_step != null) at.set(`${stopped}@${e.rung_step}`, { x: e.rung_step, kind: stopped });
  return [...at.values()].sort((a, b) => a.x - b.x);
}

/** What the curves' rules and marks mean (an adaptive sweep only). */
function caption(view, rungs) {
  if (!rungs.length) {
    clear(view.els.caption);
    return;
  }
  const key = (kind, text) => h("span", { class: `mark ${kind}` }, `${MARKS[kind].glyph} ${text}`);
  const waiting = view.sweep.experiments.some((e) => e.status === "paused");
  clear(view.els.caption,
    "Each arm's curve ends where its members stopped; dashed lines are the rungs "
    + `(step ${rungs.map((r) => r.step).join(", ")}). `,
    key("promoted", "promoted at the rung (resumed from its checkpoint)"), "; ",
    key("pruned", "pruned at the rung (trained no further)"),
    ...(waiting ? ["; ", key("waiting", "paused at the rung, waiting for its decision")] : []), ".");
}

/** The curve's arm and seed: the series' own labels when present, else the sweep's list. */
function armOf(body, id, members) {
  const own = body.labels?.[id] || body.curves?.[id];
  if (own?.arm != null) return { arm: String(own.arm), seed: own.seed };
  const m = members.get(id);
  return { arm: m ? m.label : id, seed: m ? m.seed : "?" };
}
