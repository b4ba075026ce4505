// The experiments list: filters, sort by a summary metric, cursor pages, live refresh.
import { api, qs } from "../api.js";
import { clear, errorBox, fmt, h, labelled, link, select, statusBadge, table, tags } from "../dom.js";
import { STATUSES } from "../status.js";

const PAGE = 50;
const REFRESH_MS = 3000;

export function listView(root, ctx) {
  const state = { filters: { status: "", sweep_id: "", activation: "", tag: "" }, sortBy: "",
    desc: true, cursors: [null], page: 0, rows: [], next: null, picked: new Set() };
  const out = h("div", { id: "experiments" });
  clear(root, h("h1", {}, "Experiments"), controls(state, () => reload(true)), out);

  async function reload(resetPage) {
    if (resetPage) Object.assign(state, { cursors: [null], page: 0 });
    try {
      const body = await api("/v1/experiments" + qs({ ...state.filters, limit: PAGE,
        cursor: state.cursors[state.page] }));
      state.rows = body.items;
      state.next = body.next_cursor;
      render(out, state, reload);
    } catch (err) {
      clear(out, errorBox(err));
    }
  }
  const timer = setInterval(() => reload(false), REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
  return reload(true);
}

function controls(state, apply) {
  const text = (key, placeholder) =>
    h("input", { name: key, placeholder, value: state.filters[key],
      onchange: (e) => { state.filters[key] = e.target.value.trim(); apply(); } });
  return h("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); apply(); } },
    labelled("status", select("status", ["", ...STATUSES].map((s) => [s, s || "any"]), "",
      (v) => { state.filters.status = v; apply(); })),
    labelled("sweep", text("sweep_id", "sweep id")),
    labelled("activation", text("activation", "e.g. noisy_relu")),
    labelled("tag", text("tag", "tag")));
}

function metricNames(rows) {
  const names = new Set();
  for (const r of rows) for (const k of Object.keys(r.summary || {})) names.add(k);
  return [...names].sort();
}

function sorted(state) {
  if (!state.sortBy) return state.rows;
  const v = (r) => r.summary?.[state.sortBy];
  const sign = state.desc ? -1 : 1;
  return [...state.rows].sort((a, b) => {
    if (v(a) == null) return 1;
    if (v(b) == null) return -1;
    return sign * (v(a) - v(b));
  });
}

function render(out, state, reload) {
  const names = metricNames(state.rows);
  const sortCtl = h("div", { class: "controls" },
    labelled("sort by summary metric", select("sort", [["", "newest first"], ...names],
      state.sortBy, (v) => { state.sortBy = v; render(out, state, reload); })),
    labelled("order", select("order", [["desc", "high → low"], ["asc", "low → high"]],
      state.desc ? "desc" : "asc", (v) => { state.desc = v === "desc"; render(out, state, reload); })),
    h("button", { type: "button", id: "compare-picked", disabled: state.picked.size < 2,
      onclick: () => { location.hash = "#/compare" + qs({ ids: [...state.picked].join(",") }); } },
      `Compare selected (${state.picked.size})`));
  const columns = [
    { title: "", cell: (r) => h("input", { type: "checkbox", checked: state.picked.has(r.id),
      "aria-label": `pick ${r.id}`, onchange: (e) => {
        e.target.checked ? state.picked.add(r.id) : state.picked.delete(r.id);
        render(out, state, reload); } }) },
    { title: "name", cell: (r) => link(r.name || r.id, "experiments", r.id) },
    { title: "status", cell: (r) => [statusBadge(r.status), r.status_reason ? ` ${r.status_reason}` : ""] },
    { title: "activation", cell: (r) => r.activation, cls: "nowrap" },
    { title: "tags", cell: (r) => tags(r.tags) },
    { title: "sweep", cell: (r) => (r.sweep_id ? link(r.sweep_id, "sweeps", r.sweep_id) : "") },
    { title: "progress", cell: (r) => progressText(r.progress), num: true },
    { title: state.sortBy || "test/acc", num: true,
      cell: (r) => fmt(r.summary?.[state.sortBy || "test/acc"]) },
    { title: "created", cell: (r) => new Date(r.created_at).toLocaleString(), cls: "nowrap" },
  ];
  const rows = sorted(state);
  const body = rows.length
    ? table(columns, rows, { class: "experiments", row: (r) => ({ "data-id": r.id }) })
    : h("p", { class: "muted" }, "No experiments match.");
  clear(out, sortCtl, body, pager(state, reload));
}

function progressText(p) {
  if (!p) return "";
  return p.total ? `${Math.round((100 * p.step) / p.total)}%` : `epoch ${p.epoch}`;
}

function pager(state, reload) {
  const go = (delta) => {
    if (delta > 0) state.cursors[state.page + 1] = state.next;
    state.page += delta;
    reload(false);
  };
  return h("div", { class: "pager" },
    h("button", { type: "button", disabled: state.page === 0, onclick: () => go(-1) }, "← Newer"),
    h("span", { class: "muted" }, `page ${state.page + 1}`),
    h("button", { type: "button", id: "next-page", disabled: !state.next, onclick: () => go(1) }, "Older →"));
}
