// Two or more experiments side by side: overlaid curves of a metric and a diff of specs.
import { api, qs } from "../api.js";
import { Chart } from "../chart.js";
import { clear, errorBox, h, labelled, link, select, statusBadge, table } from "../dom.js";

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
    exps = await Promise.all(ids.map((id) => api(`/v1/experiments/${encodeURIComponent(id)}`)));
  } catch (err) {
    clear(root, errorBox(err));
    return;
  }
  const view = { exps, metric: "val/acc", chart: new Chart("curves", { height: 320 }) };
  const names = await metricNames(ids);
  if (!names.includes(view.metric)) view.metric = names[0] || view.metric;
  const picker = labelled("metric", select("metric", names, view.metric,
    (v) => { view.metric = v; view.chart.el.querySelector("h3").textContent = v; draw(view); }));
  view.chart.el.querySelector("h3").textContent = view.metric;
  clear(root, h("h1", {}, `Compare ${exps.length} experiments`),
    table([{ title: "experiment", cell: (e) => link(e.name || e.id, "experiments", e.id) },
      { title: "id", cell: (e) => h("code", {}, e.id) },
      { title: "status", cell: (e) => statusBadge(e.status) }], exps, { class: "compared" }),
    h("div", { class: "controls" }, picker), h("div", { class: "charts wide" }, view.chart.el),
    h("h2", {}, "Spec diff"), specDiff(exps));
  await draw(view);
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
