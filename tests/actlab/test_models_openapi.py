"""The client's models mirror the server's read schemas, field for field."""

from __future__ import annotations

from typing import Any

import pytest

from actlab.models import MIRRORS
from core.settings import Settings
from service.app import create_app


def mismatches(openapi: dict[str, Any]) -> list[str]:
    """Every difference between a client model and the schema component it mirrors."""
    components = openapi["components"]["schemas"]
    problems = []
    for model, name in MIRRORS.items():
        if name not in components:
            problems.append(f"{name}: not in the server's schema")
            continue
        schema = components[name]
        server = set(schema.get("properties", {}))
        client = set(model.model_fields)
        if server != client:
            problems.append(f"{name}: server-only {server - client}, client-only {client - server}")
        for field in set(schema.get("required", [])) & client:
            if not model.model_fields[field].is_required():
                problems.append(f"{name}.{field}: required by the server, optional in the client")
    return problems


@pytest.fixture
def openapi(tmp_path: Any) -> dict[str, Any]:
    app = create_app(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/x.db"))
    return app.openapi()


def test_client_models_match_the_server_schemas(openapi: dict[str, Any]) -> None:
    assert mismatches(openapi) == []


def test_a_drift_is_caught(openapi: dict[str, Any]) -> None:
    openapi["components"]["schemas"]["ExperimentRead"]["properties"]["new_field"] = {}
    assert any("server-only {'new_field'}" in p for p in mismatches(openapi))
