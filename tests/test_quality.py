"""Lint, format and type checks run as part of the suite, so one command checks everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGES = ["activations", "service", "worker", "actlab"]
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


def test_mypy() -> None:
    _run("mypy", *[arg for pkg in PACKAGES for arg in ("-p", pkg)])
