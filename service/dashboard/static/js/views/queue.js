// The queue: your running work, then your queued work in the order it would start, with why
// each waits and when it should start; other owners' work only as counts. Refreshes itself.
import { api } from "../api.js";
import { clear, errorBox, h, link, statusBadge, table } from "../dom.js";

const REFRESH_MS = 5000;
// Short labels of the API's reasons; each cell's title holds the API's full sentence.
const REASONS = {
  priority: "higher priority ahead",
  fair_share: "fair share: others first",
  order: "behind own earlier work",
  owner_limit: "owner at max running",
  resources: "fits no worker",
  pack: "pack member still running",
  no_worker: "next; all workers busy",
};

export function duration(seconds) {
  if (seconds < 1) return "under a second";
  const s = Math.round(seconds);
  const hours = Math.floor(s / 3600), minutes = Math.floor((s % 3600) / 60), secs = s % 60;
  if (hours) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  if (minutes) return `${minutes} min ${String(secs).padStart(2, "0")} s`;
  return `${secs} s`;
}

export async function queueView(root, ctx) {
  const summary = h("p", { class: "muted", id: "queue-summary" });
  const out = h("div", { id: "queue" });
  clear(root, h("h1", {}, "Queue"), summary, out);
  let timer = null;
  ctx.onLeave(() => clearTimeout(timer));
  const load = async () => {
    try {
      const body = await api("/v1/queue");
      const w = body.workers, o = body.others;
      summary.textContent = `Policy ${body.policy}: ${w.busy} of ${w.live} workers busy. ` +
        `Other owners' work: ${o.running} running, ${o.queued} queued.`;
      const cols = [
        { title: "place", cell: (e) => (e.queue ? `#${e.queue.position}` : statusBadge(e.status)) },
        { title: "experiment", cell: (e) => link(e.name || e.id, "experiments", e.id) },
        { title: "owner", cell: (e) => e.owner || "—" },
        { title: "priority", cell: (e) => String(e.priority), num: true },
        { title: "progress", cell: (e) => `${e.progress.step} / ${e.progress.total ?? "?"} steps` },
        { title: "why it waits", cell: (e) => (e.queue
          ? h("span", { title: e.queue.reason_text }, REASONS[e.queue.reason] || e.queue.reason)
          : `on ${e.worker || "?"}`) },
        { title: "ahead (others')", cell: (e) => (e.queue ? `${e.queue.ahead} (${e.queue.ahead_other_owners})` : "—"), num: true },
        { title: "starts / ends", cell: (e) => {
          const s = e.queue ? e.queue.eta_seconds : e.remaining_seconds;
          if (s == null) return h("span", { class: "muted", title: "no run of its dataset and model has finished here yet" }, "no estimate yet");
          return e.queue ? `starts in ${duration(s)}` : `ends in ${duration(s)}`;
        } },
      ];
      clear(out, body.items.length
        ? table(cols, body.items, { class: "queue", row: (e) => ({ "data-id": e.id }) })
        : h("p", { class: "muted" }, "Nothing of yours is queued or running."));
    } catch (err) {
      clear(out, errorBox(err));
    }
    timer = setTimeout(load, REFRESH_MS);
  };
  await load();
}
