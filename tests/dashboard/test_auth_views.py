"""With auth on, the page asks for a key and shows each owner only their own work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.store.db import session_scope
from service.auth import create_key
from tests.dashboard.browser import Server, Watched, start_up, stop_up
from tests.dashboard.test_views import small_spec
from tests.support import HANG_S

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, broker_url: str, shared_data_dir: Path
) -> Iterator[Server]:
    up = start_up(tmp_path_factory.mktemp("up-auth"), broker_url, shared_data_dir, auth=True)
    yield up
    stop_up(up)


def _keys(server: Server) -> dict[str, str]:
    with session_scope(server.database_url) as session:
        return {owner: create_key(session, owner=owner) for owner in ("alice", "bob")}


def test_page_asks_for_a_key_and_isolates_owners(page: Watched, server: Server) -> None:
    keys = _keys(server)
    headers = {"Authorization": f"Bearer {keys['alice']}"}
    with httpx.Client(base_url=server.url, timeout=HANG_S, headers=headers) as alice:
        exp = alice.post("/v1/experiments", json=small_spec(name="alice-only")).json()
    p = page.page
    p.goto("/")
    p.wait_for_selector("#key-form")
    assert p.locator("table.experiments").count() == 0
    page.shot("auth-key-form")

    p.fill('input[name="api-key"]', keys["bob"])
    p.click('#key-form button[type="submit"]')
    p.wait_for_selector("#experiments table, #experiments p")
    assert "alice-only" not in p.inner_text("main")
    assert p.evaluate("sessionStorage.getItem('actlab.apiKey')") == keys["bob"]
    page.shot("auth-bob-list")
    p.goto(f"/#/experiments/{exp['id']}")
    p.wait_for_selector("main .error")
    assert "alice-only" not in p.inner_text("main")
    page.shot("auth-bob-other-owner")

    p.click("#signout")
    p.fill('input[name="api-key"]', keys["alice"])
    p.click('#key-form button[type="submit"]')
    p.wait_for_selector("#experiment-name")
    assert p.inner_text("#experiment-name") == "alice-only"
    assert p.evaluate("document.cookie") == ""
