"""One-pass float32 CPU kernels for the noisy hard units and nrelu, built on first use.

The block kernels (``activations.blocks``) keep a unit's temporaries in cache, but still
run a dozen ATen ops per block, each a pass over the block and a dispatch. ``units.c`` does
the same arithmetic element by element in one loop: a forward reads x and the noise and
writes the output over the noise, a backward reads x, the regenerated noise and the
upstream gradient and writes dL/dx over the noise. The noise itself is drawn as before
(``noise.sample``, chunked and parallel), so the units' random streams do not change.

The source is compiled once per machine with the C compiler on PATH (``$CC``, else ``cc``)
into a cache folder (``$ACTLAB_NATIVE_CACHE``, else ``~/.cache/actlab/native``), keyed by
the source, the flags and the CPU's feature flags (it is built with ``-march=native``).
Where no compiler is found or the build fails, ``available`` is False and the units take
the block path, with a warning logged once. ``ACTLAB_NATIVE=0`` turns the kernels off.

Determinism: each call handles a fixed span of rows on one thread of ``noise.executor()``
(ctypes releases the GIL); the spans follow the tensor's shape, never the thread count, and
the per-span partial sums of dL/dp are added in span order, so a seed gives the same bits
on one thread or many.
"""

from .large import SPAN, hard_backward, hard_forward, nrelu_backward, nrelu_forward
from .loader import FLAGS, SOURCE, available, build, library, load, reset, small_available, use
from .small import hard_small_backward, hard_small_forward

__all__ = [
    "FLAGS",
    "SOURCE",
    "SPAN",
    "available",
    "build",
    "hard_backward",
    "hard_forward",
    "hard_small_backward",
    "hard_small_forward",
    "library",
    "load",
    "nrelu_backward",
    "nrelu_forward",
    "reset",
    "small_available",
    "use",
]
