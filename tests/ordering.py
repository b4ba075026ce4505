"""Longest modules first, so that no core idles while the other finishes a long one.

Under `-n auto --dist loadscope` each module goes to one pytest worker whole, and a worker
takes the next module from the front of the queue when it runs dry. pytest-xdist queues the
modules with the most tests first, so modules of one long test (the live schemathesis run:
over a minute) came last, and one core waited out the whole of that test alone at the end
of a pass. Longest-processing-time-first is the classic answer: the queue is sorted by each
module's measured seconds (tests/module_seconds.json, written by `--store-module-seconds`),
the README's commands pass `--no-loadscope-reorder` so that xdist keeps this order, and the
last module to start is a short one.

A module missing from the file (a new one) is given the median module's cost. Tests keep
their order inside a module; only whole modules move. A sequential run is left in file order.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

SECONDS_FILE = Path(__file__).with_name("module_seconds.json")


def module_of(nodeid: str) -> str:
    """The module part of a node id (`tests/x/test_y.py::test_z[1]` -> `tests/x/test_y.py`)."""
    return nodeid.split("::", 1)[0]


def load_seconds(path: Path = SECONDS_FILE) -> dict[str, float]:
    if not path.exists():
        return {}
    return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}


def longest_first(items: list[pytest.Item], seconds: dict[str, float]) -> list[pytest.Item]:
    """`items` with whole modules sorted by cost, longest first; ties and each module's own
    tests keep their collected order."""
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(module_of(item.nodeid), len(first_seen))
    unknown = statistics.median(seconds.values()) if seconds else 0.0

    def key(item: pytest.Item) -> tuple[float, int]:
        module = module_of(item.nodeid)
        return (-seconds.get(module, unknown), first_seen[module])

    return sorted(items, key=key)  # stable: a module's tests keep their order


class ModuleSeconds:
    """Adds up each module's test time (setup, call and teardown, so a module-scoped
    `actlab up` counts) as the reports reach this process, and merges it into the file at the
    end: modules that did not run keep their entry."""

    def __init__(self, path: Path = SECONDS_FILE) -> None:
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        merged = load_seconds(self.path)
        merged.update({m: round(s, 1) for m, s in self.seconds.items()})
        self.path.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
