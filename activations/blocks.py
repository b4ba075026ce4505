"""Cache-sized blocks for the noisy units' elementwise math on CPU, run on the noise pool.

An eager formula of a dozen ops over a 16M-element tensor makes a dozen passes over
memory, each into a freshly allocated (page-faulted) 64 MB buffer: that, not the
arithmetic, is where a noisy hard unit's time went. Run the same ops block by block,
each block a few tens of KB, and every temporary lives in cache and is reused by the
allocator; the big tensors are read and written once.

The partition depends only on the tensor's shape, never on the thread count, and each
block is small enough that ATen runs its ops (reductions included) serially, so a
block's result, and the sum of per-block partials taken in block order, are the same
bits on one thread or many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor

from . import noise

# ATen runs an op on fewer elements than its GRAIN_SIZE serially (reductions included).
_GRAIN = 32768
# Elements per block: under the grain, so each op on a block is serial.
BLOCK = 1 << 14
# A tensor under this many elements is one block (a recurrent gate's size): its time is the
# per-op overhead, so the fewest ops win. Elementwise ops give the same bits however ATen
# splits them over threads; a caller that reduces a block over more than _GRAIN elements
# sums it in row chunks under the grain (``row_sum``), in order.
WHOLE = 1 << 16
# Blocks per pool task: enough work per task to amortise the hand-off to a thread.
_PER_TASK = 64
# Fewer blocks than this run inline: a hand-off to the pool costs more than it saves.
_MIN_PARALLEL = 4

T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """How a contiguous tensor is cut: a 2-D view [rows, width] and row ranges."""

    shape: tuple[int, int]
    ranges: tuple[tuple[int, int], ...]

    def view(self, t: Tensor) -> Tensor:
        """``t`` (contiguous, same numel) seen as [rows, width]."""
        return t.view(self.shape)


def layout(x: Tensor, per_channel: bool) -> Layout:
    """Blocks of about BLOCK elements; whole rows of x (dim 0) when a parameter is per channel.

    With a per-channel parameter a row [channels, *rest] carries every channel once, so the
    parameter broadcasts over a block of rows; otherwise the flat tensor is cut anywhere.
    """
    n = x.numel()
    rows = x.shape[0] if per_channel and n and x.dim() >= 2 else (1 if per_channel else n)
    width = n // rows if rows else 1
    # One block, the whole tensor, when it is small (fewest ops: a recurrent gate's size),
    # and off the CPU (a GPU's kernels are not cache-bound).
    whole = n < WHOLE or x.device.type != "cpu"
    step = max(rows, 1) if whole else max(1, BLOCK // width)
    return Layout((rows, width), tuple((i, min(i + step, rows)) for i in range(0, rows, step)))


def row_sum(t: Tensor) -> Tensor:
    """``t.sum(0)`` of a 2-D block, in chunks of rows under ATen's grain added in order: the
    same bits on one thread or many (a reduction over more elements may be split by threads)."""
    step = max(1, _GRAIN // max(t.shape[1], 1))
    if step >= t.shape[0]:  # one chunk (a recurrent gate's size): one call
        return t.sum(0)
    total = t[:step].sum(0)
    for i in range(step, t.shape[0], step):
        total.add_(t[i : i + step].sum(0))
    return total


def run(fn: Callable[[int, int], T], lay: Layout) -> list[T]:
    """``fn(start, stop)`` for every row range, in parallel; results in block order."""
    ranges = lay.ranges
    # Grouping blocks into tasks may follow the thread count: the blocks themselves do not.
    per_task = min(_PER_TASK, -(-len(ranges) // max(torch.get_num_threads(), 1)))
    if len(ranges) < _MIN_PARALLEL or per_task >= len(ranges):
        with torch.no_grad():
            return [fn(*r) for r in ranges]
    tasks = [ranges[i : i + per_task] for i in range(0, len(ranges), per_task)]
    done = noise.executor().map(lambda task: [_no_grad(fn, *r) for r in task], tasks)
    return [result for task in done for result in task]


def _no_grad(fn: Callable[[int, int], T], start: int, stop: int) -> T:
    # Grad mode is thread-local: a pool thread must not record these ops.
    with torch.no_grad():
        return fn(start, stop)
