"""Lint, format and type checks run as part of the suite, so one command checks everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGES = ["activations", "zoo", "core", "service", "worker", "actlab"]
PYTHON_TREES = [*PACKAGES, "tests", "benchmarks", "docs/studies", "examples"]


def _run(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", *PYTHON_TREES),
        ("ruff", "format", "--check", *PYTHON_TREES),
    ],
)
def test_ruff(command: tuple[str, ...]) -> None:
    _run(*command)


def test_import_contracts() -> None:
    """The layers in pyproject.toml's [tool.importlinter]: who may import whom."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    """No two modules of the packages import each other, directly or through others, lazy
    imports inside functions included. Imports under `if TYPE_CHECKING:` are left out: they
    name types for the checker and never run."""
    import grimp

    built = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    modules = set(built.modules)
    graph = {m: built.find_modules_directly_imported_by(m) & modules for m in modules}
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]  # the finder finds
    assert _cycles(graph) == []


def test_no_import_path_in_a_string() -> None:
    """Registrations refer to functions, not to "package.module:name" strings that the
    import graph cannot see (entry points in pyproject.toml are the documented exception)."""
    import re

    pattern = re.compile(r"""["'](activations|zoo|core|service|worker|actlab)\.[a-z_.]+:""")
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


def test_mypy() -> None:
    """Type checks the packages. mypy's incremental cache lives in the user's cache folder
    (ACTLAB_MYPY_CACHE overrides it), not in the checkout, so a fresh clone on a machine that
    checked before reuses it: mypy re-checks each module whose source changed (it compares
    contents, not just times) and what depends on it, so a stale cache cannot hide an error.
    A cold check costs about 27 s of CPU, a warm one under 1 s."""
    cache = Path(
        os.environ.get("ACTLAB_MYPY_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "actlab"
        / f"mypy-py{sys.version_info.major}{sys.version_info.minor}"
    )
    _run("mypy", "--cache-dir", str(cache), *[arg for pkg in PACKAGES for arg in ("-p", pkg)])
