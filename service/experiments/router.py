"""/v1/experiments: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import FileResponse

from service.auth import PrincipalDep
from service.deps import SessionDep, SettingsDep
from service.experiments import events, service
from service.experiments.schemas import (
    EventList,
    ExperimentList,
    ExperimentRead,
    MetricNames,
    MetricSeries,
    MetricSeriesColumns,
)
from service.experiments.series_render import FastJSON, SeriesFormat, render
from service.idempotency import IdempotencyDep
from service.spec import ExperimentSpec
from service.spec.experiment import CANONICAL_EXAMPLE
from service.store import experiments as repo
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
def create_experiment(
    spec: SpecBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
) -> Any:
    """Validate a spec, store it as a queued experiment and send it to the workers.

    With an `Idempotency-Key` header, a retry with the same key and body returns the first
    response and creates nothing; the same key with another body is a 422.
    """
    row = service.create(session=session, settings=settings, principal=principal, spec=spec)
    body = ExperimentRead.from_row(row)
    idempotency.save(status.HTTP_201_CREATED, body)
    return body


@router.get("", response_model=ExperimentList)
def list_experiments(
    session: SessionDep,
    principal: PrincipalDep,
    status: Status | None = None,
    sweep_id: Annotated[str | None, Query(max_length=64)] = None,
    activation: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$")] = None,
) -> Any:
    """Newest first, filtered; follow `next_cursor` for more."""
    rows, next_cursor = service.list_page(
        session=session,
        principal=principal,
        limit=limit,
        cursor=cursor,
        status=status.value if status else None,
        sweep_id=sweep_id,
        activation=activation,
        tag=tag,
    )
    return ExperimentList(items=[ExperimentRead.from_row(r) for r in rows], next_cursor=next_cursor)


@router.get("/{experiment_id}", response_model=ExperimentRead)
def get_experiment(experiment_id: str, session: SessionDep, principal: PrincipalDep) -> Any:
    """Status, progress, summary, attempts and timestamps of one experiment."""
    row = service.get(session=session, principal=principal, experiment_id=experiment_id)
    return ExperimentRead.from_row(row)


@router.get("/{experiment_id}/metrics", response_model=MetricSeries | MetricSeriesColumns)
def get_metrics(
    experiment_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    name: Annotated[list[str] | None, Query(description="Repeat for several names.")] = None,
    after_step: Annotated[int | None, Query(ge=-1, le=2**31 - 1)] = None,
    max_points: Annotated[
        int | None, Query(ge=1, le=100_000, description="Downsample, keeping extremes.")
    ] = None,
    format: Annotated[
        SeriesFormat, Query(description="`columnar`: {step: [...], epoch: [...], value: [...]}.")
    ] = SeriesFormat.points,
) -> Any:
    """Time series by metric name: `{"series": {"val/acc": [{"step", "epoch", "value"}]}}`.

    `max_points=n` returns min(n, available) points per series, downsampled keeping each
    bucket's first, min, max and last point.

    Once the experiment has ended, an unknown `name` is a 422 that lists the names it has.
    """
    series = service.metric_series(
        session=session,
        principal=principal,
        experiment_id=experiment_id,
        names=name,
        after_step=after_step,
        max_points=max_points,
    )
    return FastJSON({"experiment_id": experiment_id, "series": render(series, format)})


@router.get("/{experiment_id}/metric-names", response_model=MetricNames)
def get_metric_names(experiment_id: str, session: SessionDep, principal: PrincipalDep) -> Any:
    """The names of every metric the experiment has reported (what `name=` accepts)."""
    found = service.metric_names(session=session, principal=principal, experiment_id=experiment_id)
    return MetricNames(experiment_id=experiment_id, names=found)


@router.get(
    "/{experiment_id}/events",
    response_model=EventList,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def get_events(
    experiment_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Only events with a larger id.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    stream: Annotated[bool, Query(description="Server-Sent Events (or Accept).")] = False,
    last_event_id: Annotated[
        str,
        Header(
            max_length=48,
            pattern=events.STREAM_ID_PATTERN,
            description="Resume a stream after this id (`E-M`).",
        ),
    ] = "",
) -> Any:
    """Status transitions and log lines; as SSE (with progress and new metric points) until
    the experiment ends when `stream=true` or `Accept: text/event-stream`."""
    service.get(session=session, principal=principal, experiment_id=experiment_id)
    if stream or "text/event-stream" in request.headers.get("accept", ""):
        return events.respond(
            request,
            session,
            settings,
            principal,
            [experiment_id],
            events.Cursor.parse(last_event_id, after),
            tagged=False,
        )
    rows = repo.events_after(session, experiment_id, after, limit)
    items = [events.event_json(e) for e in rows]
    return EventList(events=items, next_after=items[-1]["id"] if items else after)  # type: ignore[arg-type]


@router.post("/{experiment_id}/cancel", response_model=ExperimentRead)
def cancel_experiment(experiment_id: str, session: SessionDep, principal: PrincipalDep) -> Any:
    """Queued → cancelled at once; running → cancelling, then cancelled within seconds."""
    row = service.cancel(session=session, principal=principal, experiment_id=experiment_id)
    return ExperimentRead.from_row(row)


@router.post("/{experiment_id}/retry", response_model=ExperimentRead)
def retry_experiment(
    experiment_id: str, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    """Failed or cancelled → queued again; the next attempt resumes from its checkpoint."""
    row = service.retry(
        session=session, settings=settings, principal=principal, experiment_id=experiment_id
    )
    return ExperimentRead.from_row(row)


@router.get(
    "/{experiment_id}/weights",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_weights(
    experiment_id: str, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    """The final weights as safetensors (the spec is in the file's metadata)."""
    row = service.get(session=session, principal=principal, experiment_id=experiment_id)
    path = service.weights_file(settings=settings, experiment=row)
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"{experiment_id}.safetensors"
    )
