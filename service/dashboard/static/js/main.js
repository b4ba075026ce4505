// Hash routes: #/ (experiments), #/experiments/ID, #/sweeps, #/sweeps/ID[?metric=M&seeds=1],
// #/compare?ids=A,B, #/queue.
import { auth } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import { compareView } from "./views/compare.js";
import { experimentView } from "./views/experiment.js";
import { listView } from "./views/list.js";
import { queueView } from "./views/queue.js";
import { sweepView } from "./views/sweep.js";
import { sweepsView } from "./views/sweeps.js";

const root = document.getElementById("app");
let leaving = [];

function route() {
  for (const fn of leaving) fn();
  leaving = [];
  const ctx = { onLeave: (fn) => leaving.push(fn) };
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  document.getElementById("signout").hidden = !auth.key;
  const run = async () => {
    if (parts[0] === "experiments" && parts[1]) return experimentView(root, ctx, parts[1]);
    if (parts[0] === "sweeps" && parts[1]) return sweepView(root, ctx, parts[1], params);
    if (parts[0] === "sweeps") return sweepsView(root, ctx);
    if (parts[0] === "compare") return compareView(root, ctx, params);
    if (parts[0] === "queue") return queueView(root, ctx);
    return listView(root, ctx);
  };
  document.body.dataset.ready = "";
  // A view that fails says so on the page, above whatever it had drawn.
  run().catch((err) => {
    console.error(err);
    root.prepend(errorBox(err));
  }).finally(() => (document.body.dataset.ready = "1"));
}

/** With auth on, every view waits behind this form until a key is given. */
function askForKey(problem) {
  for (const fn of leaving) fn();
  leaving = [];
  auth.clear();
  const input = h("input", { type: "password", name: "api-key", autocomplete: "off",
    placeholder: "actlab_…", required: true });
  clear(root, h("form", { class: "keyform", id: "key-form", onsubmit: async (e) => {
    e.preventDefault();
    auth.set(input.value);
    route();
  } }, h("h1", {}, "API key"),
  h("p", { class: "muted" }, "This server requires an API key (from `actlab keys create NAME`). " +
    "It is kept in this tab's sessionStorage only and sent as a Bearer header."),
  problem?.detail ? h("p", { class: "error" }, problem.detail) : null,
  input, h("button", { class: "primary", type: "submit" }, "Use key")));
}

auth.onUnauthorized(askForKey);
document.getElementById("signout").addEventListener("click", () => askForKey(null));
window.addEventListener("hashchange", route);
route();
