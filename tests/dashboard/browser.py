"""A real `actlab up` and Debian's Chromium under Playwright, for the dashboard's tests."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.scratch import drop_scratch, scratch_database
from tests.support import HANG_S, ROOT, Process, configured_database_url

CHROMIUM = os.environ.get("ACTLAB_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("ACTLAB_TEST_ARTIFACTS", ROOT / ".artifacts" / "dashboard"))
# The hostile strings of the issue; each would set window.__xss if it ever ran.
HOSTILE_NAME = '<img src=x onerror="window.__xss=1;alert(1)">'
HOSTILE_TAG = '"><script>window.__xss=2;alert(2)</script>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_or_skip() -> str:
    """The system Chromium; CI sets ACTLAB_REQUIRE_BROWSER=1 so a missing one fails."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("ACTLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    pytest.skip(f"no Chromium at {CHROMIUM}; .ci/run installs it")


@dataclass
class Server:
    """`actlab up` (API + one worker) on its own database and queue."""

    url: str
    database_url: str
    process: Process


def start_up(tmp: Path, broker_url: str, data_dir: Path, *, auth: bool) -> Server:
    database_url = scratch_database(configured_database_url(), tmp)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(
        ACTLAB_DATA_DIR=str(data_dir),
        ACTLAB_DATABASE_URL=database_url,
        ACTLAB_BROKER_URL=broker_url,
        ACTLAB_QUEUE=f"actlab-dash-{uuid.uuid4().hex[:10]}",
        ACTLAB_CHECKPOINT_DIR=str(tmp / "checkpoints"),
        ACTLAB_API_PORT=str(port),
        ACTLAB_AUTH_ENABLED="true" if auth else "false",
        ACTLAB_HEARTBEAT_SECONDS="2",
        ACTLAB_LEASE_SECONDS="20",
        ACTLAB_REAPER_INTERVAL_SECONDS="2",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )
    process = Process([sys.executable, "-m", "actlab", "up"], env, tmp / "up.log")
    process.wait_for("Uvicorn running")
    return Server(f"http://127.0.0.1:{port}", database_url, process)


def stop_up(server: Server) -> None:
    server.process.stop(signal.SIGINT)
    drop_scratch(server.database_url)


# Package scope, not session: Playwright's sync API keeps an event loop running in the
# main thread while it lives, and later tests call asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # As root, Chromium's sandbox cannot start: --no-sandbox (a local, trusted page).
        chromium = p.chromium.launch(
            executable_path=executable, chromium_sandbox=False, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page plus what it did: every request URL, script errors, dialogs opened, and for a
    failure's report the console's errors and warnings and every request that failed or was
    answered with an error (a module script that fails to load raises no page error)."""

    page: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list, repr=False)
    failed: list[str] = field(default_factory=list, repr=False)

    def off_origin(self) -> list[str]:
        return [u for u in self.requests if not _same_origin(u, self.origin)]

    def shot(self, name: str) -> Path:
        """A full-page screenshot under ARTIFACTS, named by view and database."""
        kind = "postgres" if configured_database_url() else "sqlite"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}-{kind}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _same_origin(url: str, origin: str) -> bool:
    if url.startswith(("data:", "blob:")):
        return True
    a, b = urlsplit(url), urlsplit(origin)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def watch(browser: Any, origin: str) -> Watched:
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, base_url=origin)
    # Playwright's own limits (30 s for a wait, a click or a navigation) are wall-clock bounds
    # that a busy box reached: a run's first curve took longer than 30 s to draw with both
    # cores loaded. Every wait that does not name its limit gets the hang limit instead.
    context.set_default_timeout(HANG_S * 1000)
    context.set_default_navigation_timeout(HANG_S * 1000)
    page = context.new_page()
    watched = Watched(page, origin)
    page.on("request", lambda r: watched.requests.append(r.url))
    clock = time.monotonic

    def on_error(error: Any) -> None:
        watched.errors.append(str(error))
        watched.console.append(f"{clock():.1f} pageerror: {error.stack or error}")

    page.on("pageerror", on_error)

    def on_console(message: Any) -> None:
        if message.type in ("error", "warning"):
            watched.console.append(f"{clock():.1f} {message.type}: {message.text}")

    def on_failed(request: Any) -> None:
        watched.failed.append(f"{clock():.1f} {request.method} {request.url}: {request.failure}")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            watched.failed.append(
                f"{clock():.1f} {response.request.method} {response.url}: HTTP {response.status}"
            )

    page.on("console", on_console)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return watched


def close(watched: Watched) -> None:
    watched.page.context.close()


def failure_sections(watched: Watched | None, server: Server | None) -> list[tuple[str, str]]:
    """What a failed browser test's report shows besides the traceback: the page's console
    and failed requests (times are time.monotonic()) and the end of the server's log."""
    sections = []
    if watched is not None:
        sections += [
            ("browser console (errors, warnings)", "\n".join(watched.console) or "none"),
            ("failed requests", "\n".join(watched.failed) or "none"),
            ("requests", "\n".join(watched.requests) or "none"),
        ]
    if server is not None:
        log = server.process.output().splitlines()[-60:]
        sections.append((f"actlab up log, last lines (now {time.monotonic():.1f})", "\n".join(log)))
    return sections
