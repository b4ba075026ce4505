"""One owner per transaction: `session_scope` commits, then runs the after-commit actions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store.db import after_commit, session_scope
from core.store.models import Experiment
from tests.support import canonical_spec

ROOT = Path(__file__).resolve().parents[3]


def _create(session: Session) -> str:
    spec = ExperimentSpec.model_validate(canonical_spec())
    return repo.create(session, spec=spec, owner_id=None).id


def test_an_action_runs_after_the_commit_and_sees_the_row(settings: Settings) -> None:
    """What a task would do on arrival, reading the row on another connection, finds it."""
    url = settings.resolved_database_url
    seen: list[bool] = []
    with session_scope(url) as session:
        experiment_id = _create(session)

        def send() -> None:
            with session_scope(url) as other:
                seen.append(other.get(Experiment, experiment_id) is not None)

        after_commit(session, send)
        assert seen == []  # nothing is sent while the transaction is open
    assert seen == [True]


def test_a_rolled_back_unit_sends_nothing(settings: Settings) -> None:
    url = settings.resolved_database_url
    sent: list[str] = []
    with pytest.raises(RuntimeError), session_scope(url) as session:
        experiment_id = _create(session)
        after_commit(session, lambda: sent.append(experiment_id))
        raise RuntimeError("the request failed after the insert")
    assert sent == []
    with session_scope(url) as session:
        assert session.get(Experiment, experiment_id) is None


def test_a_failing_action_does_not_stop_the_others(settings: Settings) -> None:
    sent: list[int] = []

    def broken() -> None:
        raise ConnectionError("broker away")

    with session_scope(settings.resolved_database_url) as session:
        after_commit(session, broken)
        after_commit(session, lambda: sent.append(2))
    assert sent == [2]  # and no error: the row is committed, the reaper re-sends


def test_only_the_unit_of_work_commits() -> None:
    """No router, service or worker step commits on its own: `session_scope` owns that."""
    owners = {ROOT / "service" / "store" / "db.py"}
    found = []
    for package in ("service", "worker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path in owners or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("commit", "rollback")
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
