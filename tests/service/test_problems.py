"""Every error, whoever raises it, leaves through one renderer as the same problem+json."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from tests.support import canonical_spec


@pytest.fixture
def small(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"max_body_bytes": 4096}))) as c:
        yield c


def _requests() -> dict[str, tuple[int, str, str, dict]]:
    spec = canonical_spec()
    return {
        "service 404": (404, "GET", "/v1/experiments/exp_missing", {}),
        "route 404": (404, "GET", "/v1/nowhere", {}),
        "405": (405, "DELETE", "/v1/experiments", {}),
        "validation 422": (422, "GET", "/v1/experiments", {"params": {"limit": 0}}),
        "strict-json 422": (422, "POST", "/v1/experiments", {"content": b'{"a": NaN}'}),
        "413": (413, "POST", "/v1/experiments", {"json": {**spec, "tags": ["x" * 60] * 100}}),
    }


@pytest.mark.parametrize("case", list(_requests()))
def test_each_error_is_one_problem_shape_with_its_path(small: TestClient, case: str) -> None:
    status, method, path, kwargs = _requests()[case]
    if "content" in kwargs:
        kwargs = {**kwargs, "headers": {"content-type": "application/json"}}
    response: httpx.Response = small.request(method, path, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].startswith("https://actlab.dev/problems/")
    assert body["status"] == response.status_code
    assert body["title"] and body["detail"]
    assert body["instance"] == path
