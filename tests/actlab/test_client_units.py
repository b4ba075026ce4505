"""Client pieces that need no server: SSE frames, spec overrides, typed problems."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import actlab
from actlab import errors, specs, sse


def test_sse_frames_parse_ids_kinds_multiline_data_and_skip_comments() -> None:
    text = (
        ": keep-alive\n\n"
        'id: 7\nevent: status\ndata: {"id": 7,\ndata:  "kind": "status"}\n\n'
        'event: progress\r\ndata: {"step": 3}\r\n\r\n'
        "data: plain\n\n"
    )
    got = list(sse.frames(text.splitlines(keepends=True)))
    assert [(f.event, f.id) for f in got] == [
        ("status", "7"),
        ("progress", None),
        ("message", None),
    ]
    assert got[0].json() == {"id": 7, "kind": "status"}
    assert got[1].json() == {"step": 3}
    assert got[2].json() == "plain"


def test_specs_load_yaml_and_json_and_apply_dotted_overrides(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("training: {epochs: 20}\nactivation: {name: relu}\n")
    (tmp_path / "s.json").write_text(json.dumps({"training": {"epochs": 20}}))
    for name in ("s.yaml", "s.json"):
        doc = specs.apply(specs.load(tmp_path / name), {"training.epochs": 5, "a.b.c": [1]})
        assert doc["training"] == {"epochs": 5} and doc["a"] == {"b": {"c": [1]}}
    assert specs.parse_assignment("training.epochs=5") == ("training.epochs", 5)
    assert specs.parse_assignment("activation.name=relu") == ("activation.name", "relu")
    assert specs.parse_assignment("model.hidden=[10, 10]") == ("model.hidden", [10, 10])
    with pytest.raises(ValueError, match="PATH=VALUE"):
        specs.parse_assignment("training.epochs")


def _response(status: int, body: dict) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def test_problems_become_typed_errors_with_field_and_setting() -> None:
    invalid = errors.from_response(
        _response(
            422,
            {
                "type": "https://actlab.dev/problems/invalid-request",
                "title": "Invalid request",
                "detail": "training.epochs: too small",
                "errors": [{"path": "training.epochs", "message": "too small"}],
            },
        )
    )
    assert isinstance(invalid, actlab.InvalidRequest) and invalid.field == "training.epochs"
    assert invalid.type == "invalid-request"
    limit = errors.from_response(
        _response(422, {"title": "Limit exceeded", "detail": "x", "setting": "ACTLAB_MAX_EPOCHS"})
    )
    assert isinstance(limit, actlab.LimitExceeded) and limit.setting == "ACTLAB_MAX_EPOCHS"
    assert isinstance(errors.from_response(_response(404, {})), actlab.NotFound)
    assert isinstance(errors.from_response(_response(503, {})), actlab.ServerError)


def test_client_reads_url_and_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTLAB_URL", "http://example.invalid:1234/")
    monkeypatch.setenv("ACTLAB_API_KEY", "k-123")
    client = actlab.Client()
    assert client.url == "http://example.invalid:1234"
    assert client.http.headers["Authorization"] == "Bearer k-123"
    assert actlab.Client("http://other:1", api_key="x").http.headers["Authorization"] == "Bearer x"
