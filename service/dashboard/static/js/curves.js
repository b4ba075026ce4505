// Metric points kept per name, merged by step (downsampled history + live stream points).

export class Series {
  constructor() {
    this.byName = new Map();
  }

  names() {
    return [...this.byName.keys()].sort();
  }

  get(name) {
    return this.byName.get(name) || { xs: [], ys: [] };
  }

  /** Add points [{step, value}] of one name; steps already present keep their value. */
  merge(name, points) {
    const cur = this.byName.get(name) || { xs: [], ys: [] };
    const last = cur.xs.length ? cur.xs[cur.xs.length - 1] : -Infinity;
    if (points.every((p, i) => p.step > (i ? points[i - 1].step : last))) {
      for (const p of points) {
        cur.xs.push(p.step);
        cur.ys.push(p.value);
      }
    } else {
      const all = new Map(cur.xs.map((x, i) => [x, cur.ys[i]]));
      for (const p of points) if (!all.has(p.step)) all.set(p.step, p.value);
      const xs = [...all.keys()].sort((a, b) => a - b);
      cur.xs = xs;
      cur.ys = xs.map((x) => all.get(x));
    }
    this.byName.set(name, cur);
  }
}

const ORDER = ["loss", "accuracy", "noise/scale", "lr"];

/** Groups of metric names drawn together: losses, accuracies, noise, lr, one per diagnostic. */
export function chartGroups(names) {
  const groups = new Map(ORDER.map((t) => [t, []]));
  const add = (title, name) => {
    if (!groups.has(title)) groups.set(title, []);
    groups.get(title).push(name);
  };
  for (const name of names) {
    const diag = name.match(/^(act|grad)\/(.+)\/([^/]+)$/);
    if (diag) add(`${diag[1] === "act" ? "diagnostics" : "gradients"}: ${diag[3]}`, name);
    else if (name.endsWith("/loss")) add("loss", name);
    else if (name.endsWith("/acc")) add("accuracy", name);
    else if (name === "noise/scale") add("noise/scale", name);
    else add(name, name);
  }
  for (const [title, members] of groups) if (!members.length) groups.delete(title);
  return groups;
}
