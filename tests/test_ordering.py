"""The order pytest-xdist's workers take modules in (tests/ordering.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import ordering
from tests.support import ROOT


def items(*nodeids: str) -> list[Any]:
    return [SimpleNamespace(nodeid=n) for n in nodeids]


def ids(sorted_items: list[Any]) -> list[str]:
    return [i.nodeid for i in sorted_items]


def test_modules_go_longest_first_and_keep_their_tests_in_order() -> None:
    collected = items("a.py::t1", "a.py::t2", "b.py::t[1]", "b.py::t[2]", "c.py::C::t", "c.py::u")
    seconds = {"a.py": 1.0, "b.py": 80.0, "c.py": 5.0}
    assert ids(ordering.longest_first(collected, seconds)) == [
        "b.py::t[1]", "b.py::t[2]", "c.py::C::t", "c.py::u", "a.py::t1", "a.py::t2",
    ]  # fmt: skip


def test_an_unmeasured_module_costs_the_median_and_ties_keep_file_order() -> None:
    collected = items("new.py::t", "a.py::t", "b.py::t", "c.py::t", "other_new.py::t")
    seconds = {"a.py": 1.0, "b.py": 9.0, "c.py": 4.0}
    assert ids(ordering.longest_first(collected, seconds)) == [
        "b.py::t", "new.py::t", "c.py::t", "other_new.py::t", "a.py::t",
    ]  # fmt: skip
    assert ids(ordering.longest_first(collected, {})) == ids(collected)


def test_stored_seconds_add_up_every_phase_and_keep_modules_that_did_not_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "seconds.json"
    path.write_text(json.dumps({"kept.py": 3.0, "a.py": 99.0}))
    store = ordering.ModuleSeconds(path)
    for nodeid, duration in [("a.py::t", 0.5), ("a.py::t", 2.0), ("a.py::u", 0.5), ("b.py::t", 1)]:
        store.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=duration))  # type: ignore[arg-type]
    store.pytest_sessionfinish(None)  # type: ignore[arg-type]
    assert json.loads(path.read_text()) == {"a.py": 3.0, "b.py": 1.0, "kept.py": 3.0}
    assert list(json.loads(path.read_text())) == ["a.py", "b.py", "kept.py"]


@pytest.mark.parametrize("name", ["test-command", "backend-test-command"])
def test_the_readme_commands_keep_this_order(name: str) -> None:
    """xdist re-sorts the modules by their number of tests unless told not to."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(f"<!-- ci: {name} -->", 1)[1].split("```", 2)[1]
    assert "--dist loadscope" in block and "--no-loadscope-reorder" in block


def test_the_stored_seconds_name_modules_that_exist() -> None:
    seconds = ordering.load_seconds()
    assert seconds, "tests/module_seconds.json is empty"
    assert [m for m in seconds if not (ROOT / m).is_file()] == []
