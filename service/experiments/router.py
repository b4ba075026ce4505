"""/v1/experiments: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import FileResponse

from core import scheduling
from core.spec import ExperimentSpec
from core.spec.experiment import CANONICAL_EXAMPLE
from core.store.models import Status
from service.access import ExperimentDep
from service.auth import PrincipalDep
from service.deps import PageDep, SessionDep, SettingsDep
from service.experiments import events, forks, preview, service
from service.experiments.schemas import (
    ExperimentList,
    ExperimentRead,
    KeptCheckpoints,
    MetricNames,
    MetricSeries,
    MetricSeriesColumns,
    SpecPreview,
    SpecPreviewColumns,
)
from service.experiments.series_render import (
    FastJSON,
    FormatQuery,
    MaxPoints,
    SeriesFormat,
    render,
)
from service.idempotency import IdempotencyDep
from service.queue import view as queue_view

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
    body = ExperimentRead.model_validate(row)
    idempotency.save(status.HTTP_201_CREATED, body)
    return body


@router.post("/preview", response_model=SpecPreview | SpecPreviewColumns)
def preview_spec(
    spec: SpecBody,
    settings: SettingsDep,
    principal: PrincipalDep,
    steps: Annotated[
        preview.PreviewSteps,
        Query(description="`evaluations`: only the steps at which the run logs metrics."),
    ] = preview.PreviewSteps.all,
    max_points: MaxPoints = None,
    format: FormatQuery = SeriesFormat.points,
) -> Any:
    """The `noise/scale` and `lr` the spec's run will see, step by step, and its length.

    The body is validated as for POST /v1/experiments (the same 422s, limits included);
    nothing is stored. `steps_per_epoch` and `total_steps` come from the dataset's split
    sizes, and each value from the schedule code and step -> t mapping the trainer uses:
    point `step: s` is the value the s-th step trains with, which is what a metric logged
    at step s reports. Early stopping or a time limit may end the run sooner (see `notes`).
    """
    body = preview.build(settings=settings, spec=spec, steps=steps, max_points=max_points)
    return FastJSON({**body, "series": render(body["series"], format)})


@router.get("", response_model=ExperimentList)
def list_experiments(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    status: Status | None = None,
    sweep_id: Annotated[str | None, Query(max_length=64)] = None,
    activation: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    parent_id: Annotated[
        str | None, Query(max_length=64, description="Only the forks of this experiment.")
    ] = None,
) -> Any:
    """Newest first, filtered; follow `next_cursor` for more."""
    rows, next_cursor = service.list_page(
        session=session,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        status=status.value if status else None,
        sweep_id=sweep_id,
        activation=activation,
        tag=tag,
        parent_id=parent_id,
    )
    return ExperimentList(
        items=[ExperimentRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get("/{experiment_id}", response_model=ExperimentRead)
def get_experiment(
    experiment: ExperimentDep, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    """Status, progress, summary, attempts and timestamps of one experiment; while it is
    queued, its place in the queue (`queue`)."""
    read = ExperimentRead.model_validate(experiment)
    if experiment.status == Status.queued.value:
        queue = scheduling.queue_view(session, settings)
        read.queue = queue_view.place(queue, experiment.id, principal)
    return read


@router.get("/{experiment_id}/metrics", response_model=MetricSeries | MetricSeriesColumns)
def get_metrics(
    experiment: ExperimentDep,
    session: SessionDep,
    name: Annotated[list[str] | None, Query(description="Repeat for several names.")] = None,
    after_step: Annotated[int | None, Query(ge=-1, le=2**31 - 1)] = None,
    max_points: MaxPoints = None,
    format: FormatQuery = SeriesFormat.points,
) -> Any:
    """Time series by metric name: `{"series": {"val/acc": [{"step", "epoch", "value"}]}}`.

    `max_points=n` returns min(n, available) points per series, downsampled keeping each
    bucket's first, min, max and last point.

    Once the experiment has ended, an unknown `name` is a 422 that lists the names it has.

    A fork's series read as its parent's points up to the fork step, then its own;
    `inherited_through_step` says where its own begin.
    """
    series = service.metric_series(
        session=session,
        experiment=experiment,
        names=name,
        after_step=after_step,
        max_points=max_points,
    )
    return FastJSON(
        {
            "experiment_id": experiment.id,
            "inherited_through_step": forks.inherited_through(experiment),
            "series": render(series, format),
        }
    )


@router.get("/{experiment_id}/metric-names", response_model=MetricNames)
def get_metric_names(experiment: ExperimentDep, session: SessionDep) -> Any:
    """The names of every metric the experiment has reported (what `name=` accepts)."""
    names = service.metric_names(session=session, experiment=experiment)
    return MetricNames(experiment_id=experiment.id, names=names)


@router.get("/{experiment_id}/checkpoints", response_model=KeptCheckpoints)
def get_checkpoints(experiment: ExperimentDep, session: SessionDep, settings: SettingsDep) -> Any:
    """The steps the experiment can be forked at: those whose checkpoint it kept
    (`training.keep_checkpoints`), and a fork's lineage's up to its fork step."""
    steps = forks.available(session, settings, experiment)
    return KeptCheckpoints(experiment_id=experiment.id, steps=list(steps))


@router.post(
    "/{experiment_id}/fork", status_code=status.HTTP_201_CREATED, response_model=ExperimentRead
)
def fork_experiment(
    experiment: ExperimentDep,
    request: Annotated[
        forks.ForkRequest,
        Body(
            openapi_examples={
                "noise off": {
                    "summary": "Turn the noise off from step 360 on",
                    "value": {
                        "at_step": 360,
                        "overrides": {"noise_schedule.kind": "constant", "noise_schedule.start": 0},
                    },
                }
            }
        ),
    ],
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> Any:
    """A new experiment that starts from this one's kept checkpoint at `at_step`, with the
    spec changed by `overrides` (dotted paths): the noise schedule, an activation's
    parameters, lr, lr_schedule, weight decay, the length, evaluation and checkpoint
    cadences, early stopping, the seed. Its first `at_step` steps are this one's, exactly;
    a fork that changes nothing continues exactly as this one did (docs/forks.md).

    Only the owner (or an admin) may fork: anyone else gets a 404. An unknown step is a 422
    on `at_step` that lists the kept ones; an override that cannot continue from the
    checkpoint (another model, dataset, batch size, or a unit with other learned
    parameters) is a 422 on `overrides.<path>` that says why.
    """
    row = forks.create(
        session=session, settings=settings, principal=principal, parent=experiment, request=request
    )
    return ExperimentRead.model_validate(row)


@router.get("/{experiment_id}/events", **events.ROUTE)
def get_events(experiment: ExperimentDep, events_request: events.EventsRequestDep) -> Any:
    """Status transitions and log lines; as SSE (with progress and new metric points) until
    the experiment ends when `stream=true` or `Accept: text/event-stream`."""
    return events_request.answer([experiment.id], tagged=False)


@router.post("/{experiment_id}/cancel", response_model=ExperimentRead)
def cancel_experiment(experiment: ExperimentDep, session: SessionDep) -> Any:
    """Queued → cancelled at once; running → cancelling, then cancelled within seconds."""
    return ExperimentRead.model_validate(service.cancel(session=session, experiment=experiment))


@router.post("/{experiment_id}/retry", response_model=ExperimentRead)
def retry_experiment(
    experiment: ExperimentDep, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    """Failed or cancelled → queued again; the next attempt resumes from its checkpoint."""
    row = service.retry(
        session=session, settings=settings, principal=principal, experiment=experiment
    )
    return ExperimentRead.model_validate(row)


@router.get(
    "/{experiment_id}/weights",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_weights(experiment: ExperimentDep, settings: SettingsDep) -> Any:
    """The final weights as safetensors (the spec is in the file's metadata)."""
    path = service.weights_file(settings=settings, experiment=experiment)
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"{experiment.id}.safetensors"
    )
