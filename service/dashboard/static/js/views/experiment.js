// One experiment: spec, status, events, live curves over the SSE stream, cancel and retry;
// a fork's lineage, and its curves over its parent's.
import { api, qs, stream } from "../api.js";
import { Chart, color } from "../chart.js";
import { Series, chartGroups } from "../curves.js";
import { clear, errorBox, fmt, h, link, statusBadge, table, tags } from "../dom.js";
import { TERMINAL } from "../status.js";

const HISTORY_POINTS = 2000;

export async function experimentView(root, ctx, id) {
  const abort = new AbortController();
  ctx.onLeave(() => abort.abort());
  const view = { id, exp: null, series: new Series(), charts: new Map(), events: [],
    lastEvent: 0, preview: null, parent: null, els: {} };
  try {
    view.exp = await api(`/v1/experiments/${encodeURIComponent(id)}`);
  } catch (err) {
    clear(root, errorBox(err));
    return;
  }
  layout(root, view);
  renderHeader(view);
  loadLineage(view);
  // The stream first, then the history: a point lands in one or both (merged by step).
  if (!TERMINAL.has(view.exp.status)) follow(view, abort.signal);
  await loadHistory(view);
}

function layout(root, view) {
  const els = view.els;
  els.header = h("div", { id: "experiment-header" });
  els.charts = h("div", { class: "charts", id: "charts" });
  els.lineage = h("div", { id: "lineage" });
  els.events = h("div", { id: "events" });
  els.spec = h("pre", { id: "spec" });
  clear(root, els.header, els.lineage, h("h2", {}, "Curves"), els.charts, h("h2", {}, "Events"),
    els.events, h("h2", {}, "Spec"), els.spec);
}

function renderHeader(view) {
  const e = view.exp;
  const act = (label, path, cls, enabled) =>
    h("button", { type: "button", class: cls, id: label.toLowerCase(), disabled: !enabled,
      onclick: async () => {
        try {
          view.exp = await api(`/v1/experiments/${encodeURIComponent(e.id)}/${path}`, { method: "POST" });
          renderHeader(view);
          if (path === "retry") location.reload();
        } catch (err) {
          view.els.header.append(errorBox(err));
        }
      } }, label);
  const p = e.progress || {};
  clear(view.els.header,
    h("h1", { id: "experiment-name" }, e.name || e.id),
    h("div", { class: "meta" },
      h("span", {}, "id ", h("code", {}, e.id)),
      h("span", {}, statusBadge(e.status)),
      e.status_reason ? h("span", { id: "status-reason" }, "reason: ", e.status_reason) : null,
      e.status_message ? h("span", { id: "status-message" }, e.status_message) : null,
      h("span", {}, "activation ", e.activation),
      e.sweep_id ? h("span", {}, "sweep ", link(e.sweep_id, "sweeps", e.sweep_id)) : null,
      h("span", {}, tags(e.tags)),
      h("span", {}, `attempts ${e.attempts}`),
      h("span", {}, p.total ? h("progress", { max: p.total, value: p.step }) : null,
        ` step ${p.step ?? 0}${p.total ? ` / ${p.total}` : ""}, epoch ${p.epoch ?? 0}`)),
    h("div", { class: "controls" },
      act("Cancel", "cancel", "danger", ["queued", "running"].includes(e.status)),
      act("Retry", "retry", "", ["failed", "cancelled"].includes(e.status)),
      e.summary ? h("span", { class: "muted summary", id: "summary" }, "summary: ",
        Object.entries(e.summary).filter(([, v]) => typeof v === "number")
          .map(([k, v]) => `${k} ${fmt(v)}`).join(", ")) : null));
  view.els.spec.textContent = JSON.stringify(e.spec, null, 2);
}

const changes = (overrides) =>
  Object.entries(overrides || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") || "no change";

/** Where the experiment comes from (its ancestors, oldest first) and its forks. */
async function loadLineage(view) {
  const ancestors = [];
  let fork = view.exp.fork;
  try {
    while (fork && ancestors.length < 20) {
      const parent = await api(`/v1/experiments/${encodeURIComponent(fork.parent_id)}`);
      ancestors.unshift({ exp: parent, at: fork.at_step, overrides: fork.overrides });
      fork = parent.fork;
    }
    const forks = await api(`/v1/experiments${qs({ parent_id: view.id, limit: 100 })}`);
    const steps = await api(`/v1/experiments/${encodeURIComponent(view.id)}/checkpoints`);
    renderLineage(view, ancestors, forks.items, steps.steps);
  } catch (err) {
    view.els.lineage.append(errorBox(err));
  }
}

function renderLineage(view, ancestors, forks, steps) {
  const rows = [];
  for (const a of ancestors) {
    rows.push(h("li", {}, link(a.exp.name || a.exp.id, "experiments", a.exp.id), " ",
      statusBadge(a.exp.status), ` → forked at step ${a.at} (${changes(a.overrides)})`));
  }
  rows.push(h("li", { class: "current" }, h("strong", {}, view.exp.name || view.exp.id),
    " (this experiment)"));
  const forkRows = forks.map((f) => h("li", { "data-fork": f.id },
    link(f.name || f.id, "experiments", f.id), " ", statusBadge(f.status),
    ` from step ${f.fork.at_step}: ${changes(f.fork.overrides)}`));
  if (!ancestors.length && !forkRows.length) {
    clear(view.els.lineage, h("p", { class: "muted", id: "fork-steps" },
      steps.length ? `Can be forked at ${steps.length} kept steps (${steps[0]}–${steps[steps.length - 1]}): actlab fork ${view.id} --at-step K --set PATH=VALUE`
        : "No kept checkpoints yet: nothing to fork from."));
    return;
  }
  clear(view.els.lineage, h("h2", {}, "Lineage"),
    h("ol", { class: "lineage", id: "ancestors" }, ...rows),
    forkRows.length ? h("p", {}, `Forks (${forkRows.length}):`) : null,
    forkRows.length ? h("ul", { class: "lineage", id: "forks" }, ...forkRows) : null);
}

async function loadHistory(view) {
  const path = `/v1/experiments/${encodeURIComponent(view.id)}/metrics`;
  const body = await api(path + qs({ max_points: HISTORY_POINTS, format: "columnar" }));
  for (const [name, cols] of Object.entries(body.series)) {
    view.series.merge(name, cols.step.map((step, i) => ({ step, value: cols.value[i] })));
  }
  if (view.exp.fork) {
    // The parent's whole curves, drawn under the fork's: where they part is the fork's doing.
    const id = encodeURIComponent(view.exp.fork.parent_id);
    const parent = await api(`/v1/experiments/${id}/metrics` + qs({ max_points: HISTORY_POINTS, format: "columnar" }));
    view.parent = new Series();
    for (const [name, cols] of Object.entries(parent.series)) {
      view.parent.merge(name, cols.step.map((step, i) => ({ step, value: cols.value[i] })));
    }
  }
  const events = await api(`/v1/experiments/${encodeURIComponent(view.id)}/events` + qs({ limit: 1000 }));
  for (const ev of events.events) addEvent(view, ev);
  await loadPreview(view);
  redraw(view);
}

/**
 * Follow the SSE stream until its `end` frame; reconnect after `lastEvent` when the
 * connection drops or the server closes it early (its maximum duration, a slow reader).
 */
async function follow(view, signal) {
  let ended = false;
  const onEvent = (k, d) => { if (k === "end") ended = true; onFrame(view, k, d); };
  for (let tries = 0; tries < 20 && !signal.aborted; tries++) {
    try {
      const path = `/v1/experiments/${encodeURIComponent(view.id)}/events`;
      await stream(path + qs({ stream: "true", after: view.lastEvent }), onEvent, signal);
      if (ended) return;
    } catch (err) {
      if (signal.aborted) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function onFrame(view, kind, data) {
  if (kind === "metrics") {
    const byName = new Map();
    for (const p of data) {
      if (!byName.has(p.name)) byName.set(p.name, []);
      byName.get(p.name).push(p);
    }
    for (const [name, points] of byName) view.series.merge(name, points);
    redraw(view);
  } else if (kind === "progress") {
    const first = !view.exp.progress?.total && data.total;
    Object.assign(view.exp, { status: data.status, progress: { epoch: data.epoch, step: data.step, total: data.total } });
    renderHeader(view);
    if (first) loadPreview(view).then(() => redraw(view));
  } else if (kind === "end") {
    refresh(view);
  } else if (data && typeof data === "object" && "id" in data) {
    addEvent(view, data);
    if (data.status) refresh(view);
  }
}

async function refresh(view) {
  view.exp = await api(`/v1/experiments/${encodeURIComponent(view.id)}`);
  renderHeader(view);
}

function addEvent(view, ev) {
  if (ev.id <= view.lastEvent) return;
  view.lastEvent = ev.id;
  view.events.push(ev);
  const cols = [
    { title: "at", cell: (e) => new Date(e.at).toLocaleTimeString() },
    { title: "kind", cell: (e) => e.kind },
    { title: "status", cell: (e) => (e.status ? statusBadge(e.status) : "") },
    { title: "message", cell: (e) => e.message || "" },
  ];
  clear(view.els.events, table(cols, view.events.slice(-200).reverse(), { class: "events" }));
}

/** The noise/scale the spec's run sees at each step (the server's spec preview, computed by
 * the trainer's own schedule code), drawn beside the measured `noise/scale`. */
async function loadPreview(view) {
  const spec = view.exp.spec;
  if (!spec?.noise_schedule || view.preview) return;
  try {
    const body = await api(`/v1/experiments/preview${qs({ max_points: 400, format: "columnar" })}`,
      { method: "POST", body: spec });
    const curve = body.series["noise/scale"];
    view.preview = { xs: curve.step, ys: curve.value };
  } catch {
    view.preview = { xs: [], ys: [] };
  }
}

function redraw(view) {
  const groups = chartGroups(view.series.names());
  for (const [title, names] of groups) {
    if (!view.charts.has(title)) {
      const chart = new Chart(title, { logY: /snr(_output)?(_unit_median)?$/.test(title) });
      view.charts.set(title, chart);
      view.els.charts.append(chart.el);
    }
    const curves = names.map((n) => ({ label: n.replace(/^(act|grad)\//, ""), ...view.series.get(n) }));
    if (view.parent) {
      const at = view.exp.fork.at_step;
      for (const [i, n] of names.entries()) {
        // The parent after the fork step (before it, the fork's curve is the parent's).
        const { xs, ys } = view.parent.get(n);
        const from = Math.max(0, xs.findIndex((x) => x >= at));
        if (xs.length && xs[xs.length - 1] > at) {
          curves.push({ label: `${curves[i].label} (parent)`, xs: xs.slice(from), ys: ys.slice(from),
            dash: [4, 4], color: color(i) });
        }
      }
    }
    if (title === "noise/scale" && view.preview?.xs.length) {
      curves.push({ label: "schedule (preview)", ...planned(view), dash: [6, 4], color: "#6b7280" });
    }
    view.charts.get(title).set(curves);
  }
}

/** The whole plan while it runs; once ended, only the part the run reached. A fork's plan
 * starts at its fork step: before it, the noise was its parent's. */
function planned(view) {
  let { xs, ys } = view.preview;
  const at = view.exp.fork?.at_step;
  if (at) {
    const n = xs.findIndex((x) => x >= at);
    [xs, ys] = n < 0 ? [[], []] : [xs.slice(n), ys.slice(n)];
  }
  if (!TERMINAL.has(view.exp.status)) return { xs, ys };
  const reached = view.exp.progress?.step ?? Infinity;
  const n = xs.findIndex((x) => x > reached);
  return n < 0 ? { xs, ys } : { xs: xs.slice(0, n + 1), ys: ys.slice(0, n + 1) };
}
