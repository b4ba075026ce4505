"""Per-example results of a finished run, as stored: which test examples its final model got
right, one bit each (numpy.packbits), so that a comparison can resample test examples as
well as seeds (docs/statistics.md, "Test-set uncertainty").

Stored in the experiment's `examples` column as `{"split": "test", "n": N, "hits": base64}`:
1,000 test examples take 168 characters.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np


def encode_hits(hits: Sequence[bool] | np.ndarray, *, split: str = "test") -> dict[str, Any]:
    """The stored form of a run's per-example hits on `split`."""
    bits = np.asarray(hits, dtype=bool)
    packed = np.packbits(bits, bitorder="little")
    text = base64.b64encode(packed.tobytes()).decode()
    return {"split": split, "n": int(bits.size), "hits": text}


def decode_hits(stored: dict[str, Any] | None, *, split: str = "test") -> np.ndarray | None:
    """The bool vector `encode_hits` stored, or None when there is none for `split` (a run
    from before this was kept, one without a test split, or a malformed value)."""
    if not stored or stored.get("split") != split:
        return None
    try:
        n = int(stored["n"])
        packed = np.frombuffer(base64.b64decode(stored["hits"], validate=True), dtype=np.uint8)
    except (KeyError, TypeError, ValueError):
        return None
    if n < 0 or packed.size != (n + 7) // 8:
        return None
    return np.unpackbits(packed, count=n, bitorder="little").astype(bool)
