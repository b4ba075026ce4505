"""Fixtures of the engine tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def data_dir(shared_data_dir: Path) -> Path:
    """The suite's data directory, so generated datasets are cached once per session."""
    return shared_data_dir


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Engine tests marked slow run only with `-m slow` or ACTLAB_RUN_SLOW=1."""
    if "slow" in (config.getoption("-m") or "") or os.environ.get("ACTLAB_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or ACTLAB_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords and HERE in Path(str(item.path)).parents:
            item.add_marker(skip)
