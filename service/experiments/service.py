"""Experiment use cases: the router parses, these act (flush only; the request commits)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from service.deps import after_commit
from service.errors import NotFound
from service.experiments.downsample import downsample
from service.queue import send_run
from service.settings import Settings
from service.spec import ExperimentSpec
from service.store import experiments as repo
from service.store import metrics as metrics_repo
from service.store.models import Experiment


def create(*, session: Session, settings: Settings, spec: ExperimentSpec) -> Experiment:
    """Insert a queued experiment; it is sent to the workers after the commit."""
    experiment = repo.create(session, spec=spec)
    repo.mark_enqueued(session, experiment.id)
    experiment_id = experiment.id
    after_commit(session, lambda: send_run(settings, experiment_id))
    return experiment


def get(*, session: Session, experiment_id: str) -> Experiment:
    experiment = repo.get(session, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id!r} not found")
    return experiment


def list_page(
    *, session: Session, limit: int, cursor: str | None, **filters: str | None
) -> tuple[Sequence[Experiment], str | None]:
    """One page and the cursor of the next (None on the last page)."""
    rows = repo.list_page(session, limit=limit + 1, cursor=cursor, **filters)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def metric_series(
    *,
    session: Session,
    experiment_id: str,
    names: list[str] | None,
    after_step: int | None,
    max_points: int | None,
) -> dict[str, list[dict]]:
    get(session=session, experiment_id=experiment_id)
    series = metrics_repo.series(session, experiment_id, names=names, after_step=after_step)
    if max_points:
        series = {name: downsample(points, max_points) for name, points in series.items()}
    return series
