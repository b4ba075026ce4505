"""/v1/sweeps: parse, authorize, call the service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, status

from service.access import SweepDep
from service.auth import PrincipalDep
from service.deps import PageDep, SessionDep, SettingsDep
from service.idempotency import IdempotencyDep
from service.sweeps import power, service
from service.sweeps.schemas import EXAMPLE, SweepCreate, SweepList, SweepRead

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])

SweepBody = Annotated[
    SweepCreate,
    Body(
        openapi_examples={"relu-vs-noisy-relu": {"summary": "Two units, 5 seeds", "value": EXAMPLE}}
    ),
]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepRead)
def create_sweep(
    body: SweepBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
) -> Any:
    """Create one queued experiment per grid point and seed, all in one transaction.

    Honours `Idempotency-Key` like `POST /v1/experiments`.
    """
    created = service.create(session=session, settings=settings, body=body, principal=principal)
    idempotency.save(status.HTTP_201_CREATED, created)
    return created


@router.get("", response_model=SweepList)
def list_sweeps(session: SessionDep, principal: PrincipalDep, page: PageDep) -> Any:
    """Newest first; follow `next_cursor` for more."""
    items, next_cursor = service.list_page(
        session=session, limit=page.limit, cursor=page.cursor, owner_id=principal.scope
    )
    return SweepList(items=items, next_cursor=next_cursor)


@router.get("/{sweep_id}", response_model=SweepRead)
def get_sweep(
    sweep: SweepDep,
    session: SessionDep,
    metric: Annotated[
        str | None, Query(max_length=128, description="Default: the sweep's (test/acc).")
    ] = None,
    baseline: Annotated[
        str | None,
        Query(max_length=2000, description="An arm's `label` or a JSON object of grid values."),
    ] = None,
    family: Annotated[
        Literal["baseline", "all_pairs"],
        Query(description="The comparisons, and what p_holm/p_bh are adjusted over."),
    ] = "baseline",
    margin: Annotated[
        float | None,
        Query(gt=0, le=1e6, description="Equivalence margin: adds TOST p-values (tost_p)."),
    ] = None,
    bootstrap: Annotated[
        bool, Query(description="Add BCa bootstrap CIs (boot_ci_*): slower, so only when asked.")
    ] = False,
) -> Any:
    """Status counts, experiments, per-point mean/std/95% CI, and the family's comparisons:
    paired t (else Welch), Holm and BH adjusted p-values, d_z and Hedges' g with CIs, a
    bootstrap CI, and TOST with `margin`."""
    return service.view(
        session=session, sweep=sweep, metric=metric, baseline=baseline, family=family,
        margin=margin, bootstrap=bootstrap,
    )  # fmt: skip


@router.post("/{sweep_id}/cancel", response_model=SweepRead)
def cancel_sweep(sweep: SweepDep, session: SessionDep) -> Any:
    """Cancel every experiment of the sweep that has not ended (queued and paused ones at
    once, running ones at their next step); an Optuna search asks no more trials."""
    return service.cancel(session=session, sweep=sweep)


@router.get("/{sweep_id}/power", response_model=power.PowerRead)
def get_power(
    sweep: SweepDep,
    session: SessionDep,
    delta: Annotated[float, Query(gt=0, le=1e6, description="The difference to detect.")],
    power_: Annotated[float, Query(alias="power", gt=0, lt=1)] = 0.8,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    metric: Annotated[str | None, Query(max_length=128)] = None,
    baseline: Annotated[str | None, Query(max_length=2000)] = None,
    family: Annotated[Literal["baseline", "all_pairs"], Query()] = "baseline",
) -> Any:
    """How many seeds each comparison needs to detect `delta` at `power`, with alpha split
    over the family (alpha / m), from the observed SD of the paired differences; and the
    smallest difference the current seeds detect."""
    view = service.view(
        session=session, sweep=sweep, metric=metric, baseline=baseline, family=family
    )
    return power.power_table(view, delta=delta, power=power_, alpha=alpha, family=family)


@router.post("/{sweep_id}/seeds", status_code=status.HTTP_201_CREATED, response_model=SweepRead)
def add_sweep_seeds(
    sweep: SweepDep,
    body: Annotated[
        power.SeedsAdd,
        Body(
            openapi_examples={
                "three": {"summary": "Three more seeds", "value": {"seeds": [5, 6, 7]}}
            }
        ),
    ],
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> Any:
    """Run every arm of a grid sweep on more seeds: each new experiment is its arm's spec
    with the new seed, so comparisons stay paired seed by seed."""
    power.add_seeds(
        session=session, settings=settings, sweep=sweep, seeds=body.seeds, principal=principal
    )
    return service.view(session=session, sweep=sweep, metric=None, baseline=None)
