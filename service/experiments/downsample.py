"""Downsampling that keeps a curve's shape: per bucket, the first, min, max and last points."""

from __future__ import annotations

from typing import Any

Point = dict[str, Any]


def downsample(points: list[Point], max_points: int) -> list[Point]:
    """At most `max_points` points, ordered by step, keeping each bucket's extremes.

    Spikes (a divergence, a noise burst) survive, unlike with strided sampling.
    """
    if max_points <= 0 or len(points) <= max_points:
        return points
    if max_points < 4:
        stride = (len(points) - 1) / max(max_points - 1, 1)
        return [points[round(i * stride)] for i in range(max_points)]
    buckets = max_points // 4
    size = len(points) / buckets
    out: list[Point] = []
    for b in range(buckets):
        bucket = points[int(b * size) : int((b + 1) * size)]
        if not bucket:
            continue
        keep = {
            id(bucket[0]): bucket[0],
            id(bucket[-1]): bucket[-1],
            id(lo := min(bucket, key=lambda p: p["value"])): lo,
            id(hi := max(bucket, key=lambda p: p["value"])): hi,
        }
        out.extend(sorted(keep.values(), key=lambda p: p["step"]))
    return out
