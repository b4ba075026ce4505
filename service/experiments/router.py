"""/v1/experiments: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from service.deps import SessionDep, SettingsDep
from service.experiments import service
from service.experiments.schemas import ExperimentList, ExperimentRead, MetricSeries
from service.spec import ExperimentSpec
from service.spec.experiment import CANONICAL_EXAMPLE
from service.store.models import Status

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

SpecBody = Annotated[
    ExperimentSpec,
    Body(
        openapi_examples={
            "canonical": {"summary": "NoisyReLU on MNIST-1D", "value": CANONICAL_EXAMPLE}
        }
    ),
]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ExperimentRead)
def create_experiment(spec: SpecBody, session: SessionDep, settings: SettingsDep) -> Any:
    """Validate a spec, store it as a queued experiment and send it to the workers."""
    row = service.create(session=session, settings=settings, spec=spec)
    return ExperimentRead.from_row(row)


@router.get("", response_model=ExperimentList)
def list_experiments(
    session: SessionDep,
    status: Status | None = None,
    sweep_id: str | None = None,
    activation: str | None = None,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """Newest first, filtered; follow `next_cursor` for more."""
    rows, next_cursor = service.list_page(
        session=session,
        limit=limit,
        cursor=cursor,
        status=status.value if status else None,
        sweep_id=sweep_id,
        activation=activation,
        tag=tag,
    )
    return ExperimentList(items=[ExperimentRead.from_row(r) for r in rows], next_cursor=next_cursor)


@router.get("/{experiment_id}", response_model=ExperimentRead)
def get_experiment(experiment_id: str, session: SessionDep) -> Any:
    """Status, progress, summary, attempts and timestamps of one experiment."""
    return ExperimentRead.from_row(service.get(session=session, experiment_id=experiment_id))


@router.get("/{experiment_id}/metrics", response_model=MetricSeries)
def get_metrics(
    experiment_id: str,
    session: SessionDep,
    name: Annotated[list[str] | None, Query(description="Repeat for several names.")] = None,
    after_step: Annotated[int | None, Query(ge=-1)] = None,
    max_points: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Any:
    """Time series by metric name: `{"series": {"val/acc": [{"step", "epoch", "value"}]}}`."""
    series = service.metric_series(
        session=session,
        experiment_id=experiment_id,
        names=name,
        after_step=after_step,
        max_points=max_points,
    )
    return MetricSeries(experiment_id=experiment_id, series=series)  # type: ignore[arg-type]
