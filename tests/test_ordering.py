"""The suite's module order for pytest-xdist (tests/ordering.py): the costliest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests import ordering


@dataclass(frozen=True)
class Item:
    nodeid: str


def ids(items: list[Item]) -> list[str]:
    return [item.nodeid for item in items]


COLLECTED = [
    Item("tests/a.py::test_1"),
    Item("tests/a.py::test_2"),
    Item("tests/b.py::test_1"),
    Item("tests/c.py::test_1[x]"),
    Item("tests/c.py::test_1[y]"),
    Item("tests/c.py::test_1[z]"),
    Item("tests/d.py::test_1"),
    Item("tests/e.py::Class::test_1"),
]


def test_the_costliest_modules_go_first_and_each_keeps_its_tests_in_order() -> None:
    costs = {"tests/d.py": 90.0, "tests/a.py": 5.0, "tests/b.py": 40.0}
    assert ids(ordering.by_cost(COLLECTED, costs)) == [
        "tests/d.py::test_1",
        "tests/b.py::test_1",
        "tests/a.py::test_1",
        "tests/a.py::test_2",
        # not listed: most tests first, then collection order
        "tests/c.py::test_1[x]",
        "tests/c.py::test_1[y]",
        "tests/c.py::test_1[z]",
        "tests/e.py::Class::test_1",
    ]


def test_without_costs_the_order_is_xdists_most_tests_first() -> None:
    assert ids(ordering.by_cost(COLLECTED, {})) == [
        "tests/c.py::test_1[x]",
        "tests/c.py::test_1[y]",
        "tests/c.py::test_1[z]",
        "tests/a.py::test_1",
        "tests/a.py::test_2",
        "tests/b.py::test_1",
        "tests/d.py::test_1",
        "tests/e.py::Class::test_1",
    ]


def test_the_order_does_not_depend_on_the_order_costs_were_listed() -> None:
    costs = {"tests/b.py": 1.0, "tests/e.py": 2.0}
    backwards = dict(reversed(list(costs.items())))
    assert ordering.by_cost(COLLECTED, costs) == ordering.by_cost(COLLECTED, backwards)


def test_merged_costs_keep_each_modules_largest(tmp_path: Path) -> None:
    one, two = tmp_path / "pass1.json", tmp_path / "pass2.json"
    one.write_text(json.dumps({"tests/a.py": 3.04, "tests/b.py": 10.0}))
    two.write_text(json.dumps({"tests/a.py": 7.26}))
    assert ordering.merge([one, two]) == {"tests/b.py": 10.0, "tests/a.py": 7.3}


def test_the_committed_costs_name_modules_that_exist() -> None:
    costs = ordering.load_costs()
    assert costs, "tests/costs.json is empty"
    root = Path(__file__).resolve().parent.parent
    missing = [module for module in costs if not (root / module).is_file()]
    assert not missing, f"tests/costs.json names modules that are gone: {missing}"
