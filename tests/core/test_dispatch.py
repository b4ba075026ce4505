"""The database is the queue of record: a run whose message could not be sent (the broker
down) is kept unsent and sent as soon as the broker answers again (core/dispatch.py)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from core.dispatch import resend_unsent
from core.queue import pending_runs
from core.settings import Settings
from core.store import lifecycle
from core.store.db import session_scope
from service.app import create_app
from tests.support import canonical_spec


def _unsent(settings: Settings) -> list[str]:
    with session_scope(settings.resolved_database_url) as session:
        return list(lifecycle.unsent(session))


def test_a_submit_while_the_broker_is_down_is_sent_when_it_answers(
    settings: Settings, tmp_path: Path
) -> None:
    # The same database and queue, the broker's socket gone: as while it restarts.
    down = settings.model_copy(update={"broker_url": f"redis+socket://{tmp_path}/gone.sock"})
    with TestClient(create_app(down)) as api:
        response = api.post("/v1/experiments", json=canonical_spec())
    assert response.status_code == 201, response.text
    experiment_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    assert _unsent(settings) == [experiment_id]  # remembered in the database
    assert experiment_id not in pending_runs(settings)

    assert resend_unsent(down) == []  # still down: nothing sent, still remembered
    assert _unsent(settings) == [experiment_id]

    assert resend_unsent(settings) == [experiment_id]  # the broker answers again
    assert experiment_id in pending_runs(settings)
    assert _unsent(settings) == []
