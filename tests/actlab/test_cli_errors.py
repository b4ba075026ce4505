"""What the `actlab` command prints when something is wrong: one line each, no traceback.

These run the CLI in this process (`actlab.cli.main`) or, where an import must fail for
real, in a subprocess; none needs a server.
"""

from __future__ import annotations

import httpx
import pytest

from actlab import cli, errors


def _problem(status: int, body: dict) -> errors.ApiError:
    headers = {"content-type": "application/problem+json"}
    return errors.from_response(httpx.Response(status, json=body, headers=headers))


def test_a_422_with_several_fields_prints_each_field_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fields = [
        {"path": "optimizer.lr", "message": "Input should be greater than 0"},
        {"path": "training.epochs", "message": "Input should be greater than or equal to 1"},
    ]
    detail = "; ".join(f"{e['path']}: {e['message']}" for e in fields)
    cli._fail(_problem(422, {"title": "Invalid request", "detail": detail, "errors": fields}))
    err = capsys.readouterr().err
    for e in fields:
        assert err.count(e["message"]) == 1, err
    assert err.startswith("error: 422 Invalid request: optimizer.lr")


def test_field_errors_past_the_detail_are_still_listed(capsys: pytest.CaptureFixture[str]) -> None:
    fields = [{"path": f"f{i}", "message": f"bad {i}"} for i in range(7)]
    detail = "; ".join(f"{e['path']}: {e['message']}" for e in fields[:5])  # the API's cap
    cli._fail(_problem(422, {"title": "Invalid request", "detail": detail, "errors": fields}))
    lines = capsys.readouterr().err.splitlines()
    assert lines[1:] == ["  f5: bad 5", "  f6: bad 6"]
