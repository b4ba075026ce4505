"""Fixtures of the end-to-end modules that inject faults or preempt: short leases and timers
from the module's `FAST` settings, and an API client on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app


@pytest.fixture
def fast(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The test's settings with its module's `FAST` overrides (short leases, quick reaper)."""
    return settings.model_copy(update=request.module.FAST)


@pytest.fixture
def api(fast: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fast)) as client:
        yield client
