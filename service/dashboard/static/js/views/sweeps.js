// The sweeps list, newest first, by the API's cursor.
import { api, qs } from "../api.js";
import { clear, errorBox, h, link, statusBadge, table } from "../dom.js";

export async function sweepsView(root) {
  const out = h("div", { id: "sweeps" });
  clear(root, h("h1", {}, "Sweeps"), out);
  const cursors = [null];
  let page = 0;
  const load = async () => {
    try {
      const body = await api("/v1/sweeps" + qs({ limit: 50, cursor: cursors[page] }));
      cursors[page + 1] = body.next_cursor;
      const cols = [
        { title: "name", cell: (s) => link(s.name, "sweeps", s.id) },
        { title: "experiments", cell: (s) => String(s.size), num: true },
        { title: "status", cell: (s) => Object.entries(s.status_counts).map(([k, n]) => [statusBadge(k), ` ${n} `]) },
        { title: "metric", cell: (s) => s.metric },
        { title: "created", cell: (s) => new Date(s.created_at).toLocaleString() },
      ];
      clear(out, body.items.length ? table(cols, body.items, { class: "sweeps" }) : h("p", { class: "muted" }, "No sweeps yet."),
        h("div", { class: "pager" },
          h("button", { type: "button", disabled: page === 0, onclick: () => { page--; load(); } }, "← Newer"),
          h("button", { type: "button", disabled: !body.next_cursor, onclick: () => { page++; load(); } }, "Older →")));
    } catch (err) {
      clear(out, errorBox(err));
    }
  };
  await load();
}
