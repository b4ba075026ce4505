"""A packed step's members in contiguous shards, one a CPU thread, each on one intra-op thread.

The stacked products of a small MLP are too small for torch's intra-op threads to pay (a
pack of 16 ran about 1.2x faster on two threads than on one), and OpenMP's waiting thread
spins. Split into one shard of members a thread, each shard running its forward, loss and
backward with one intra-op thread (torch releases the GIL inside its ops, so the shards
overlap), the packed leg of `benchmarks/bench_packing.py` took about a quarter less CPU
time at about the same wall time (docs/packing.md has the figures).

And every member's step is its own: the shards write disjoint slices of the gradient, and
each product runs on one thread whatever the pack's size, so a member's step is the same
bits in a pack of one, in a shard of any size, on any number of threads. On two intra-op
threads MKL split a tiny product (a batch of 9) otherwise for one member than for four,
and a pack resumed as smaller packs left the uninterrupted curves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import pairwise
from typing import TypeVar

import torch

T = TypeVar("T")


class Shards:
    """Runs `fn(members)` over contiguous slices of a pack's members, one slice a thread."""

    def __init__(self, device: torch.device) -> None:
        # On a GPU the device runs the products: one shard, as the pack always ran.
        self.threads = torch.get_num_threads() if device.type == "cpu" else 1
        self._pool = (
            ThreadPoolExecutor(self.threads - 1, "actlab-shard") if self.threads > 1 else None
        )

    def slices(self, k: int) -> list[slice]:
        """`k` members in at most `threads` contiguous slices of near-equal size."""
        n = max(1, min(self.threads, k))
        bounds = [round(i * k / n) for i in range(n + 1)]
        return [slice(lo, hi) for lo, hi in pairwise(bounds)]

    def start(self) -> None:
        """One intra-op thread from here to `close` (on a CPU with more than one): changing
        the count costs OpenMP a new team on the next parallel op (about 90 us), too much
        to pay twice a step."""
        if self._pool is not None:
            torch.set_num_threads(1)

    def map(self, fn: Callable[[slice], T], k: int) -> list[T]:
        """`fn` on every slice of `k` members, in slice order."""
        return self.run([partial(fn, s) for s in self.slices(k)])

    def run(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Every call's result, in order; the calling thread runs the first, the pool the
        others (at most `threads` calls: one a thread)."""
        if self._pool is None or len(calls) < 2:
            return [call() for call in calls]
        futures = [self._pool.submit(_on_one_thread, call) for call in calls[1:]]
        try:
            first = calls[0]()
        finally:
            for f in futures:  # every call is done before the caller goes on
                f.exception()
        return [first, *(f.result() for f in futures)]

    def close(self) -> None:
        """Restore the intra-op thread count and stop the pool."""
        if self._pool is not None:
            self._pool.shutdown()
            torch.set_num_threads(self.threads)


def _on_one_thread(call: Callable[[], T]) -> T:
    if torch.get_num_threads() != 1:  # a pool thread's own OpenMP setting (once)
        torch.set_num_threads(1)
    return call()
