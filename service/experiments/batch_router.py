"""GET /v1/metrics: the curves of many experiments in one request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from core.store import experiments as repo
from service.auth import PrincipalDep
from service.deps import SessionDep
from service.experiments import service
from service.experiments.schemas import MetricsBatch, MetricsBatchColumns
from service.experiments.series_render import (
    FastJSON,
    FormatQuery,
    MaxPoints,
    SeriesFormat,
    render,
)

router = APIRouter(prefix="/v1", tags=["experiments"])


@router.get("/metrics/series", response_model=MetricsBatch | MetricsBatchColumns)
def batch_metrics(
    session: SessionDep,
    principal: PrincipalDep,
    experiment_id: Annotated[
        list[str] | None, Query(max_length=500, description="Repeat for several experiments.")
    ] = None,
    sweep_id: Annotated[str | None, Query(max_length=64, description="All of a sweep's.")] = None,
    name: Annotated[list[str] | None, Query(description="Repeat for several names.")] = None,
    after_step: Annotated[int | None, Query(ge=-1, le=2**31 - 1)] = None,
    max_points: MaxPoints = None,
    format: FormatQuery = SeriesFormat.points,
) -> Any:
    """Series of every listed experiment (and/or every experiment of `sweep_id`).

    Once one of them has ended, a `name` that none of them has reported is a 422 that lists
    the names they have.
    """
    ids = list(dict.fromkeys(experiment_id or []))
    if sweep_id:
        ids += [i for i in repo.ids_of_sweep(session, sweep_id, principal.scope) if i not in ids]
    found = service.many_series(
        session=session,
        principal=principal,
        experiment_ids=ids,
        names=name,
        after_step=after_step,
        max_points=max_points,
    )
    experiments = {i: render(series, format) for i, series in found.items()}
    return FastJSON({"experiments": experiments, "labels": repo.sweep_labels(session, ids)})
