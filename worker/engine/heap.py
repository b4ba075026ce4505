"""glibc malloc tuned for training on a CPU: freed tensor memory is reused, not unmapped.

By default glibc serves a large allocation (over 128 KiB, a threshold that rises with use)
by `mmap` and trims the heap's free top back to the system once a few MiB lie there. A
training step frees its activations at the end of backward, so each step maps fresh pages
and faults them in again: at K = 16 packed members an activation is 640 KiB, and the page
faults were a tenth of a packed MNIST-1D step (the evaluation's 6 MiB outputs far more).
Raising both thresholds keeps that memory in the heap for the next step, for packed and
unpacked training alike (an unpacked run's evaluation batches fault in the same way).
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's own dynamic maximum; larger blocks are still mapped
TRIM_THRESHOLD = 128 << 20  # at most this much freed memory stays with the process

_tuned = False


def keep_freed_memory() -> None:
    """Set the thresholds once per process; a no-op off Linux or without glibc's mallopt."""
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return
    _tuned = True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
