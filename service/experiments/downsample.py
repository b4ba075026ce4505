"""Downsampling that keeps a curve's shape: per bucket, the first, min, max and last points.

Then evenly spaced other points fill the budget, so a series of n points asked for k comes
back with exactly min(k, n) points (a monotonic series used to lose half of them to
duplicates: 5 of 20 gave 2). Works on (step, epoch, value) rows ordered by step.
"""

from __future__ import annotations

from service.store.metrics import Row


def downsample(rows: list[Row], max_points: int) -> list[Row]:
    """Exactly min(max_points, len(rows)) rows by step; each bucket's extremes are kept.

    Spikes (a divergence, a noise burst) survive, unlike with strided sampling.
    """
    n = len(rows)
    if max_points <= 0 or n <= max_points:
        return rows
    if max_points < 4:  # no whole bucket: the ends and evenly spaced points between
        if max_points == 1:
            return [rows[0]]
        return [rows[round(i * (n - 1) / (max_points - 1))] for i in range(max_points)]
    keep = _extremes([r[2] for r in rows], max_points // 4)
    need = max_points - len(keep)
    if need > 0:
        rest = [i for i in range(n) if i not in keep]
        keep.update(rest[(j * len(rest)) // need] for j in range(need))
    return [rows[i] for i in sorted(keep)]


def _extremes(values: list[float], buckets: int) -> set[int]:
    """Indices of each equal-count bucket's first, last, lowest and highest point.

    min() then index() on a slice: the first lowest (highest) point, as min(span, key=...)
    gives it, at C speed.
    """
    n = len(values)
    keep: set[int] = set()
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo < hi:
            span = values[lo:hi]
            keep.update((lo, hi - 1, lo + span.index(min(span)), lo + span.index(max(span))))
    return keep
