"""A stream's replay from the database shows a run in the order it happened: queued and
running before the metrics that followed them, how it ended after them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from actlab import sse
from core.settings import Settings
from core.store import experiments as repo
from core.store.db import session_scope
from core.store.metrics import insert_points
from core.store.models import Experiment
from service.experiments import events
from tests.support import canonical_spec


def _ran(settings: Settings, exp_id: str, steps: int) -> None:
    """What a worker leaves in the database: running, a point a step, then succeeded."""
    with session_scope(settings.resolved_database_url) as session:
        repo.add_event(session, exp_id, "status", "attempt 1 on w1", status="running")
    for step in range(1, steps + 1):
        with session_scope(settings.resolved_database_url) as session:
            insert_points(session, exp_id, step=step, epoch=step, values={"val/acc": 0.1 * step})
    with session_scope(settings.resolved_database_url) as session:
        repo.add_event(session, exp_id, "status", "succeeded", status="succeeded")
        row = session.get(Experiment, exp_id)
        assert row is not None
        row.status = "succeeded"


def _replay(client: TestClient, exp_id: str) -> list[tuple[str, object]]:
    """(kind, status or step) of every frame of the experiment's stream."""
    with client.stream("GET", f"/v1/experiments/{exp_id}/events?stream=true") as response:
        frames = list(sse.frames(response.iter_lines()))
    out: list[tuple[str, object]] = []
    for frame in frames:
        data = frame.json()
        if frame.event == "metrics":
            out += [("metrics", point["step"]) for point in data]
        elif frame.event in ("status", "end"):
            out.append((frame.event, data["status"]))
    return out


@pytest.mark.parametrize("page", [None, 2], ids=["one read", "pages of two"])
def test_a_replay_sends_statuses_before_the_metrics_that_followed_them(
    settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch, page: int | None
) -> None:
    if page:  # points over several reads: the ending must wait for the last of them
        monkeypatch.setattr(events, "BATCH", page)
    exp_id = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    _ran(settings, exp_id, steps=5)
    assert _replay(client, exp_id) == [
        ("status", "queued"),
        ("status", "running"),
        *[("metrics", step) for step in range(1, 6)],
        ("status", "succeeded"),
        ("end", "succeeded"),
    ]
