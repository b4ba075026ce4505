// Two or more experiments side by side: overlaid curves of a metric and a diff of specs.
import { api, qs } from "../api.js";
import { Chart } from "../chart.js";
import { clear, errorBox, h, labelled, link, select, statusBadge, table } from "../dom.js";
import { TERMINAL } from "../status.js";

const REFRESH_MS = 3000;

export async function compareView(root, ctx, params) {
  const ids = (params.get("ids") || "").split(",").map((s) => s.trim()).filter(Boolean);
  if (ids.length < 2) {
    clear(root, h("h1", {}, "Compare"), h("p", { class: "muted" },
      "Pick two or more experiments in the list (the checkboxes), then “Compare selected”."),
    h("form", { class: "controls", onsubmit: (e) => {
      e.preventDefault();
      location.hash = "#/compare" + qs({ ids: e.target.ids.value });
    } }, labelled("experiment ids, comma-separated", h("input", { name: "ids", size: 60 })),
    h("button", { class: "primary" }, "Compare")));
    return;
  }
  let exps;
  try {
    exps = await fetchExperiments(ids);
  } catch (err) {
    clear(root, errorBox(err));
    return;
  }
  const view = { ids, exps, names: [], metric: "val/acc", chart: new Chart("curves", { height: 320 }),
    els: { compared: h("div", { id: "compared" }), controls: h("div", { class: "controls" }) } };
  clear(root, h("h1", {}, `Compare ${exps.length} experiments`), view.els.compared,
    view.els.controls, h("div", { class: "charts wide" }, view.chart.el),
    h("h2", {}, "Spec diff"), specDiff(exps));
  let timer = null;
  let left = false;
  ctx.onLeave(() => { left = true; clearTimeout(timer); });
  // Runs still going (or not yet started) report later: look again until all have ended,
  // so a page opened before the first point draws its curves without a reload.
  const tick = async () => {
    const going = await refresh(view).catch(() => true);
    if (going && !left) timer = setTimeout(tick, REFRESH_MS);
  };
  await refresh(view, { fresh: true });
  if (view.exps.some((e) => !TERMINAL.has(e.status))) timer = setTimeout(tick, REFRESH_MS);
}

function fetchExperiments(ids) {
  return Promise.all(ids.map((id) => api(`/v1/experiments/${encodeURIComponent(id)}`)));
}

/** Statuses, metric names and curves once more; whether any run has yet to end. */
async function refresh(view, { fresh = false } = {}) {
  if (!fresh) view.exps = await fetchExperiments(view.ids);
  const names = await metricNames(view.ids);
  if (fresh || names.join("\n") !== view.names.join("\n")) {
    view.names = names;
    if (!names.includes(view.metric)) view.metric = names[0] || view.metric;
    renderControls(view);
  }
  renderCompared(view);
  await draw(view);
  return view.exps.some((e) => !TERMINAL.has(e.status));
}

function renderCompared(view) {
  clear(view.els.compared,
    table([{ title: "experiment", cell: (e) => link(e.name || e.id, "experiments", e.id) },
      { title: "id", cell: (e) => h("code", {}, e.id) },
      { title: "status", cell: (e) => statusBadge(e.status) }], view.exps, { class: "compared" }));
}

function renderControls(view) {
  const title = () => (view.chart.el.querySelector("h3").textContent = view.metric);
  clear(view.els.controls, labelled("metric", select("metric", view.names, view.metric,
    (v) => { view.metric = v; title(); draw(view); })));
  title();
}

async function metricNames(ids) {
  const body = await api("/v1/metrics/series" + qs({ experiment_id: ids, max_points: 1 }));
  const names = new Set();
  for (const series of Object.values(body.experiments)) for (const n of Object.keys(series)) names.add(n);
  return [...names].sort();
}

async function draw(view) {
  const ids = view.exps.map((e) => e.id);
  const body = await api("/v1/metrics/series" +
    qs({ experiment_id: ids, name: view.metric, max_points: 1000, format: "columnar" }));
  view.chart.set(view.exps.map((e) => {
    const cols = body.experiments[e.id]?.[view.metric] || { step: [], value: [] };
    return { label: `${e.name || e.id} (${e.id})`, xs: cols.step, ys: cols.value };
  }));
}

/** Dotted path -> JSON text of every leaf of a spec. */
export function flatten(value, prefix = "", out = new Map()) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

function specDiff(exps) {
  const flat = exps.map((e) => flatten(e.spec));
  const paths = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
  const rows = paths.map((path) => ({ path, values: flat.map((f) => f.get(path) ?? "—") }));
  const differs = (r) => new Set(r.values).size > 1;
  const only = h("input", { type: "checkbox", name: "only-diff", checked: true });
  const holder = h("div", { id: "spec-diff" });
  const render = () => {
    const shown = only.checked ? rows.filter(differs) : rows;
    clear(holder, table([{ title: "path", cell: (r) => h("code", {}, r.path) },
      ...exps.map((e, i) => ({ title: e.name || e.id, cell: (r) => r.values[i] }))],
    shown, { class: "diff", row: (r) => ({ class: differs(r) ? "diff" : null }) }));
  };
  only.addEventListener("change", render);
  render();
  return h("div", {}, h("label", {}, only, " only paths that differ"), holder);
}
