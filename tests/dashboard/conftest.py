"""Fixtures of the browser tests: a running `actlab up` and a watched Chromium page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.browser import (
    Server,
    Watched,
    browser,
    close,
    failure_sections,
    start_up,
    stop_up,
    watch,
)
from tests.support import HANG_S

__all__ = ["browser"]

# Playwright's `expect` gives up after 5 s by default: a bound a busy box can reach. Its
# assertions wait up to the hang limit instead, as every other wait in the suite does.
expect.set_options(timeout=HANG_S * 1000)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, broker_url: str, shared_data_dir: Path
) -> Iterator[Server]:
    """One `actlab up` (auth off) per test module."""
    up = start_up(tmp_path_factory.mktemp("up"), broker_url, shared_data_dir, auth=False)
    yield up
    stop_up(up)


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Watched]:
    """A fresh browser context on the server; no script error and no dialog may happen."""
    watched = watch(browser, server.url)
    yield watched
    close(watched)
    assert not watched.errors, watched.errors
    assert not watched.dialogs, watched.dialogs
    assert not watched.off_origin(), watched.off_origin()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed browser test's report carries what the page and the server saw (a script
    error fails the test at teardown, where the page fixture checks it)."""
    report = yield
    if report.failed and report.when in ("call", "teardown"):
        funcargs = getattr(item, "funcargs", {})
        watched, server = funcargs.get("page"), funcargs.get("server")
        for title, text in failure_sections(
            watched if isinstance(watched, Watched) else None,
            server if isinstance(server, Server) else None,
        ):
            report.sections.append((title, text))
    return report
