// Mean and 95% confidence interval across seeds at each step (Student's t, as the API does).

// Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom.
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
  2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06,
  2.056, 2.052, 2.048, 2.045, 2.042];

export function tQuantile(df) {
  if (df <= 0) return NaN;
  return df <= 30 ? T975[df - 1] : 1.96 + 2.4 / df;
}

/** curves: [{xs, ys}] of one arm's seeds -> {xs, mean, lo, hi} over the union of steps. */
export function meanBand(curves) {
  const at = new Map();
  for (const c of curves) {
    c.xs.forEach((x, i) => {
      if (!at.has(x)) at.set(x, []);
      at.get(x).push(c.ys[i]);
    });
  }
  const xs = [...at.keys()].sort((a, b) => a - b);
  const mean = [];
  const lo = [];
  const hi = [];
  for (const x of xs) {
    const v = at.get(x);
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    mean.push(m);
    if (v.length < 2) {
      lo.push(null);
      hi.push(null);
      continue;
    }
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
    const half = (tQuantile(v.length - 1) * sd) / Math.sqrt(v.length);
    lo.push(m - half);
    hi.push(m + half);
  }
  return { xs, mean, lo, hi };
}
