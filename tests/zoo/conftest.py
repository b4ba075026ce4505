"""Fixtures of the zoo's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir(shared_data_dir: Path) -> Path:
    """The suite's data directory, so generated datasets are cached once per session."""
    return shared_data_dir
