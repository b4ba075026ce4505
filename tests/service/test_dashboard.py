"""The dashboard's pages and assets as HTTP resources (the browser tests are tests/dashboard)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.dashboard.csp import POLICY
from service.dashboard.router import STATIC

PAGES = ["/", "/docs", "/redoc"]
REFERENCE = re.compile(r'(?:src|href)="([^"#]+)"')


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_html_with_the_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_local_assets_that_exist(client: TestClient, path: str) -> None:
    html = client.get(path).text
    refs = REFERENCE.findall(html)
    assert refs, "no asset references found"
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        assert client.get(ref).status_code == 200, ref
    # No inline script: the policy would refuse it anyway, so it must not be needed.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_the_policy_forbids_inline_script_and_other_origins() -> None:
    directives = dict(d.split(" ", 1) for d in POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


def test_api_responses_carry_the_policy_too(client: TestClient) -> None:
    response = client.get("/v1/experiments")
    assert response.headers["content-security-policy"] == POLICY


def _scripts() -> list[Path]:
    return sorted((STATIC / "js").rglob("*.js"))


def test_dashboard_scripts_never_parse_markup() -> None:
    """Values become text nodes; any markup parser would be a way to run a hostile name."""
    assert _scripts()
    for script in _scripts():
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"


def test_vendored_files_are_recorded_with_their_licences() -> None:
    vendor = STATIC / "vendor"
    readme = (vendor / "README.md").read_text()
    for directory in (p for p in vendor.iterdir() if p.is_dir()):
        assert (directory / "LICENSE").exists(), directory.name
        assert f"`{directory.name}/`" in readme, directory.name


def test_unknown_static_path_is_a_problem_404(client: TestClient) -> None:
    response = client.get("/static/nope.js")
    assert response.status_code == 404


def test_index_preloads_every_module_it_imports() -> None:
    """A module missing from the preload list still works, one import level later."""
    html = (STATIC / "index.html").read_text()
    for script in _scripts():
        path = "/static/" + script.relative_to(STATIC).as_posix()
        assert path in html, f"{path} is not preloaded (or loaded) by index.html"


def test_every_program_knows_the_same_statuses() -> None:
    """The server (core.store.models), the client (actlab.models) and the dashboard
    (static/js/status.js) each hold the statuses once; they must agree."""
    import json
    import re

    from actlab.models import TERMINAL as CLIENT_TERMINAL
    from core.store.models import TERMINAL, Status

    js = (STATIC / "js" / "status.js").read_text()
    statuses = json.loads(re.search(r"STATUSES = (\[.*?\]);", js).group(1))
    terminal = json.loads(re.search(r"TERMINAL = new Set\((\[.*?\])\);", js).group(1))
    assert statuses == [s.value for s in Status]
    assert set(terminal) == {s.value for s in TERMINAL} == set(CLIENT_TERMINAL)
