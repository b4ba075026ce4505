// DOM helpers. Every value from the API becomes a text node or an attribute value, never
// markup: no HTML-string sink anywhere in the dashboard, so a hostile name renders as text
// (tests/service/test_dashboard.py greps the scripts for those sinks).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "selected" || k === "disabled") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A link inside the dashboard; path parts are URI-encoded. */
export function link(text, ...parts) {
  return h("a", { href: "#/" + parts.map(encodeURIComponent).join("/") }, text);
}

export function fmt(x, digits = 4) {
  if (x == null) return "—";
  if (typeof x !== "number") return String(x);
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5)) return x.toExponential(digits - 1);
  return Number(x.toPrecision(digits)).toString();
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, "data-status": status }, status);
}

export function tags(list) {
  return (list || []).map((t) => h("span", { class: "tag" }, t));
}

export function select(name, options, value, onchange) {
  const el = h("select", { name, onchange: (e) => onchange(e.target.value) });
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    el.append(h("option", { value: v, selected: v === value }, label));
  }
  el.value = value;
  return el;
}

export function labelled(text, control) {
  return h("label", {}, text, control);
}

/** A table from column specs {title, cell(row) -> node|string, num?}. */
export function table(columns, rows, attrs = {}) {
  const cls = (c) => [c.num ? "num" : "", c.cls || ""].join(" ").trim() || null;
  const head = h("tr", {}, columns.map((c) => h("th", { class: cls(c) }, c.title)));
  const body = rows.map((r) =>
    h("tr", c_attrs(attrs, r), columns.map((c) => h("td", { class: cls(c) }, c.cell(r)))),
  );
  return h("table", { class: attrs.class || null }, h("thead", {}, head), h("tbody", {}, body));
}

function c_attrs(attrs, row) {
  return attrs.row ? attrs.row(row) : {};
}

export function errorBox(err) {
  const detail = err?.body?.detail || err?.message || String(err);
  return h("p", { class: "error", role: "alert" }, detail);
}
