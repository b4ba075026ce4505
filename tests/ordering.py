"""The order in which pytest-xdist hands out the suite's modules: the costliest first.

With `--dist loadscope` each module goes whole to one process, in the order of the collection.
pytest-xdist's own order puts the modules with the most tests first, so a module of one or two
slow tests (the live schemathesis run, a minute or more; an end-to-end module that starts
`actlab up` and trains) was handed out last, and one core idled while it ran. Handing the
costliest out first (longest-processing-time-first scheduling) lets both processes end
close together. tests/conftest.py applies `by_cost` to the collection and turns xdist's
reordering off.

tests/costs.json holds each module's seconds (setup, call and teardown of its tests, summed)
as a CI pass measured them. A module not listed keeps xdist's rule (most tests first) behind
the listed ones. Every CI pass writes the measured costs again (`ACTLAB_TEST_COSTS_OUT`,
see .ci/run) and prints the costliest; `python -m tests.ordering FILE...` merges such files
into tests/costs.json.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

COSTS_FILE = Path(__file__).with_name("costs.json")


class _Item(Protocol):
    @property
    def nodeid(self) -> str: ...


T = TypeVar("T", bound=_Item)


def module_of(nodeid: str) -> str:
    """`tests/e2e/test_x.py::test_y[1]` -> `tests/e2e/test_x.py`."""
    return nodeid.split("::", 1)[0]


def load_costs(path: Path = COSTS_FILE) -> dict[str, float]:
    if not path.exists():
        return {}
    return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}


def by_cost(items: Sequence[T], costs: Mapping[str, float]) -> list[T]:
    """The items with whole modules reordered: the costliest first, then the modules without a
    cost by their number of tests (most first), ties in collection order. Within a module the
    order is kept. Deterministic, so every xdist process collects the same list."""
    counts = Counter(module_of(item.nodeid) for item in items)
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(module_of(item.nodeid), index)

    def key(item: T) -> tuple[float, int, int]:
        module = module_of(item.nodeid)
        return (-costs.get(module, 0.0), -counts[module], first_seen[module])

    return sorted(items, key=key)  # stable: a module's tests keep their order


def merge(paths: Sequence[Path]) -> dict[str, float]:
    """Module costs from several passes' files: a module's largest, rounded to 0.1 s."""
    merged: dict[str, float] = {}
    for path in paths:
        for module, seconds in load_costs(path).items():
            merged[module] = max(merged.get(module, 0.0), round(seconds, 1))
    return dict(sorted(merged.items(), key=lambda kv: -kv[1]))


def main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: python -m tests.ordering COSTS.json... (writes tests/costs.json)")
        return 2
    merged = merge([Path(p) for p in argv])
    COSTS_FILE.write_text(json.dumps(merged, indent=1) + "\n")
    print(f"{COSTS_FILE}: {len(merged)} modules, {sum(merged.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
