"""What the `actlab` command prints when something is wrong: one line each, no traceback.

These run the CLI in this process (`actlab.cli.main`) or, where an import must fail for
real, in a subprocess; none needs a server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from actlab import cli, errors, specs
from tests.support import HANG_S, ROOT


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


NOWHERE = "http://127.0.0.1:9"  # nothing listens: these errors come before any request


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """rc and stderr of `actlab ARGS` run in this process, stderr checked to be one line."""
    rc = cli.main([*args, "--url", NOWHERE])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return rc, err.strip()


def _spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_yaml_syntax_error_names_the_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _spec(tmp_path, "dataset:\n  name: mnist1d\nmodel: [mlp\n")
    rc, err = _run(capsys, "submit", path)
    assert rc == 1 and re.match(rf"error: {re.escape(path)}:\d+:\d+: ", err), err


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.yaml")
    rc, err = _run(capsys, "submit", missing)
    assert rc == 1 and err == f"error: {missing}: no such file"
    rc, err = _run(capsys, "sweep", "create", missing)
    assert rc == 1 and err == f"error: {missing}: no such file"


@pytest.mark.parametrize("assignment", ["=1", "training.epochs", ".epochs=1", "a..b=1", "a.=1"])
def test_a_malformed_set_is_one_line(
    assignment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, err = _run(capsys, "submit", _spec(tmp_path, "seed: 0\n"), "--set", assignment)
    assert rc == 1 and f"--set {assignment!r}" in err, err


def test_a_set_through_a_value_that_is_not_a_mapping_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _spec(tmp_path, "activation: {name: relu}\n")
    rc, err = _run(capsys, "submit", path, "--set", "activation.name.x=1")
    assert rc == 1 and 'activation.name is "relu", not a mapping' in err, err


def test_a_python_tag_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _spec(tmp_path, "seed: 0\nname: !!python/object/apply:os.system [echo pwned]\n")
    rc, err = _run(capsys, "submit", path)
    assert rc == 1 and f"{path}:2:7: tag" in err and "not allowed" in err, err


def test_a_duplicate_key_names_the_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _spec(tmp_path, "seed: 0\ndataset: {name: digits, name: mnist}\n")
    rc, err = _run(capsys, "submit", path)
    assert rc == 1 and f"{path}:2:" in err and "duplicate key 'name'" in err, err
    path = _spec(tmp_path, "seed: 0\ntraining:\n  epochs: 2\nseed: 1\n")
    rc, err = _run(capsys, "submit", path)
    assert rc == 1 and f"{path}:4:1: duplicate key 'seed' (first at line 1)" in err, err
    path = _spec(tmp_path, '{"seed": 0, "seed": 1}', name="spec.json")
    rc, err = _run(capsys, "submit", path)
    assert rc == 1 and "duplicate key 'seed'" in err, err


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    path = _spec(
        tmp_path, "base: &b {epochs: 2, batch_size: 10}\ntraining:\n  <<: *b\n  epochs: 3\n"
    )
    assert specs.load(path)["training"] == {"epochs": 3, "batch_size": 10}


def test_an_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Nine levels of ten aliases each: 10**9 nodes once expanded, a few hundred bytes here.
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    path = _spec(tmp_path, "\n".join(lines) + "\n")
    rc, err = _run(capsys, "submit", path)
    assert rc == 1 and "document refused: aliases expand it past" in err, err
    with pytest.raises(errors.SpecError, match="refers to a node that contains it"):
        specs.load(_spec(tmp_path, "a: &a [*a]\n"))


def test_a_document_that_is_not_a_mapping_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, err = _run(capsys, "submit", _spec(tmp_path, "- 1\n- 2\n"))
    assert rc == 1 and "a spec is a mapping, not list" in err


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    # A real ImportError: the child process cannot import pyarrow at all.
    launcher = (
        "import sys; sys.modules['pyarrow'] = None; from actlab.cli import main; "
        f"sys.exit(main(['export', 'exp_x', '-o', 'out.parquet', '--url', '{NOWHERE}']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        "error: Parquet export needs pyarrow: install actlab[parquet] (pyarrow), or write .csv"
    )


def test_plotting_an_unknown_metric_lists_the_names(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from actlab import plotting
    from actlab.frames import COLUMNS

    frame = pd.DataFrame(
        [["exp_a", None, None, None, name, 1, 1, 0.5] for name in ("val/acc", "train/loss")],
        columns=COLUMNS,
    )
    with pytest.raises(errors.InputError, match=r"'val/accuracy'; .*: train/loss, val/acc$"):
        plotting.plot(frame, "val/accuracy", tmp_path / "x.png")
