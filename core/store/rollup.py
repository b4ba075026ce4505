"""The multi-resolution rollup behind downsampled series reads (pure: no database here).

Every point of a series has a `seq`, its 0-based position by step. A block at level L
(L >= MIN_LEVEL) is the run of seqs [j * 2**L, (j + 1) * 2**L); the rollup stores, for
each *complete* block, its lowest and highest point as (seq, value), ties going to the
lowest seq. Blocks are written once, when their last point arrives, from their two
children (or, at MIN_LEVEL, from the raw points), so a series of n points has about
n / 2**(MIN_LEVEL - 1) rollup rows in all.

`plan` reproduces service/experiments/downsample.py exactly, on any seq range: a bucket's
first and last points are its end seqs, and its min and max come from the O(log n)
aligned blocks that cover it (pieces below MIN_LEVEL are read as raw points). So the work
is O(max_points * log(n / max_points)) reads, not O(n).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

MIN_LEVEL = 3  # blocks of 8 points and up; shorter pieces are read as raw points
Extremes = tuple[int, float, int, float]  # min_seq, min_value, max_seq, max_value


def node(level: int, block: int) -> int:
    """One integer key per block (level < 64), the rollup table's key within a series."""
    return block * 64 + level


def merge(a: Extremes, b: Extremes) -> Extremes:
    """The extremes of two pieces; a tie keeps the lower seq (Python's min/max keep the
    first)."""
    low = a if (a[1], a[0]) <= (b[1], b[0]) else b
    high = a if (-a[3], a[2]) <= (-b[3], b[2]) else b
    return (low[0], low[1], high[2], high[3])


def point(seq: int, value: float) -> Extremes:
    return (seq, value, seq, value)


def new_blocks(
    start: int,
    end: int,
    value_at: Callable[[int], float],
    old_block: Callable[[int], Extremes],
) -> list[tuple[int, Extremes]]:
    """(node, extremes) of every block completed by appending seqs [start, end).

    `value_at(seq)` gives raw values from the first new MIN_LEVEL block's start;
    `old_block(node)` the earlier blocks named by `old_nodes(start, end)`.
    """
    out: list[tuple[int, Extremes]] = []
    level = MIN_LEVEL
    first, last = start >> level, end >> level
    if first >= last:
        return out
    size = 1 << level
    current: dict[int, Extremes] = {}
    for j in range(first, last):
        ext = point(j * size, value_at(j * size))
        for s in range(j * size + 1, (j + 1) * size):
            ext = merge(ext, point(s, value_at(s)))
        current[j] = ext
    while current:
        out.extend((node(level, j), ext) for j, ext in current.items())
        level += 1
        first, last = start >> level, end >> level
        below = level - 1
        current = {
            j: merge(
                _child(current, old_block, below, 2 * j),
                _child(current, old_block, below, 2 * j + 1),
            )
            for j in range(first, last)
        }
    return out


def _child(
    fresh: Mapping[int, Extremes], old_block: Callable[[int], Extremes], level: int, j: int
) -> Extremes:
    return fresh[j] if j in fresh else old_block(node(level, j))


def old_nodes(start: int, end: int) -> tuple[range, list[int]]:
    """What `new_blocks(start, end)` reads of the series before `start`: a seq range of
    raw points and a list of block nodes (at most one per level)."""
    first = start >> MIN_LEVEL
    raw = range(first << MIN_LEVEL, start) if first < end >> MIN_LEVEL else range(0)
    nodes = []
    level = MIN_LEVEL + 1
    while start >> level < end >> level:
        left = 2 * (start >> level)  # the first new block's left child, one level down
        if left < start >> (level - 1):
            nodes.append(node(level - 1, left))
        level += 1
    return raw, nodes


def cover(lo: int, hi: int) -> tuple[list[int], list[int]]:
    """Seqs [lo, hi) as maximal aligned blocks: (block nodes, raw seqs below MIN_LEVEL)."""
    nodes: list[int] = []
    raw: list[int] = []
    x = lo
    while x < hi:
        level = (x & -x).bit_length() - 1 if x else 62
        while x + (1 << level) > hi:
            level -= 1
        if level >= MIN_LEVEL:
            nodes.append(node(level, x >> level))
        else:
            raw.extend(range(x, x + (1 << level)))
        x += 1 << level
    return nodes, raw


@dataclass
class Plan:
    """The buckets of a downsampled read of seqs [lo, lo + n), before any extremes."""

    lo: int
    n: int
    max_points: int

    def buckets(self) -> list[tuple[int, int]]:
        count = self.max_points // 4
        return [
            (self.lo + b * self.n // count, self.lo + (b + 1) * self.n // count)
            for b in range(count)
        ]

    def direct(self) -> list[int] | None:
        """The seqs, when no extremes are needed (few points, or fewer than 4 asked)."""
        n, k, lo = self.n, self.max_points, self.lo
        if k <= 0 or n <= k:
            return list(range(lo, lo + n))
        if k == 1:
            return [lo]
        if k < 4:
            return [lo + round(i * (n - 1) / (k - 1)) for i in range(k)]
        return None

    def needs(self) -> tuple[list[int], list[int]]:
        """Every block node and raw seq the buckets' extremes are made of."""
        nodes: list[int] = []
        raw: list[int] = []
        for lo, hi in self.buckets():
            n, r = cover(lo, hi)
            nodes += n
            raw += r
        return nodes, raw

    def select(self, blocks: Mapping[int, Extremes], values: Mapping[int, float]) -> list[int]:
        """The kept seqs, in order: each bucket's first, min, max and last, then evenly
        spaced others up to exactly max_points (as downsample() picks them)."""
        keep: set[int] = set()
        for lo, hi in self.buckets():
            nodes, raw = cover(lo, hi)
            parts: Iterable[Extremes] = [blocks[x] for x in nodes]
            ext = _fold([*parts, *(point(s, values[s]) for s in raw)])
            keep.update((lo, hi - 1, ext[0], ext[2]))
        return sorted(keep | set(self._fill(sorted(keep))))

    def _fill(self, keep: list[int]) -> list[int]:
        """downsample()'s `rest[(j * len(rest)) // need]`, without listing `rest`."""
        need = self.max_points - len(keep)
        rest = self.n - len(keep)
        out: list[int] = []
        p = 0
        for j in range(max(need, 0)):
            m = (j * rest) // need  # the m-th seq of the range that is not kept
            while p < len(keep) and keep[p] - self.lo <= m + p:
                p += 1
            out.append(self.lo + m + p)
        return out


def _fold(parts: list[Extremes]) -> Extremes:
    ext = parts[0]
    for other in parts[1:]:
        ext = merge(ext, other)
    return ext
