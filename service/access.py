"""Rows by id with owner isolation: the get-or-404 of every route that names one."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends
from sqlalchemy.orm import Session

from core.store.models import Experiment, Sweep
from service.auth import Principal, PrincipalDep
from service.deps import SessionDep
from service.errors import NotFound

Owned = TypeVar("Owned", Experiment, Sweep)
NOUNS = {Experiment: "experiment", Sweep: "sweep"}


def get_visible(session: Session, model: type[Owned], row_id: str, principal: Principal) -> Owned:
    """The row, or 404: also when it belongs to someone else (no hint that it exists)."""
    row = session.get(model, row_id)
    if row is None or not principal.can_see(row.owner_id):
        raise NotFound(f"{NOUNS[model]} {row_id!r} not found")
    return row


def _experiment(experiment_id: str, session: SessionDep, principal: PrincipalDep) -> Experiment:
    return get_visible(session, Experiment, experiment_id, principal)


def _sweep(sweep_id: str, session: SessionDep, principal: PrincipalDep) -> Sweep:
    return get_visible(session, Sweep, sweep_id, principal)


ExperimentDep = Annotated[Experiment, Depends(_experiment)]
"""The experiment named by the path's `{experiment_id}`, visible to the caller, or 404."""
SweepDep = Annotated[Sweep, Depends(_sweep)]
"""The sweep named by the path's `{sweep_id}`, visible to the caller, or 404."""
