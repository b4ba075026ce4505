"""Forks: a new experiment that starts from its parent's kept checkpoint at step k with a
changed spec (docs/forks.md); the steps an experiment can be forked at; a fork's metrics,
read as its lineage's points up to k followed by its own."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from core.artifacts import kept_dir, kept_name, kept_steps
from core.settings import Settings
from core.spec import forks
from core.spec.points import NAME_MAX, label
from core.store import experiments as repo
from core.store.models import Experiment
from service.auth import Principal
from service.errors import InvalidSpec
from service.experiments import service


class ForkRequest(BaseModel):
    """POST /v1/experiments/{id}/fork."""

    model_config = ConfigDict(extra="forbid")

    at_step: int = Field(
        ge=1, le=2**31 - 1, description="A kept step (GET /v1/experiments/{id}/checkpoints)."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        max_length=100,
        description="Dotted spec paths and their new values, e.g. "
        '{"noise_schedule.kind": "constant", "noise_schedule.start": 0.0}.',
        examples=[{"noise_schedule": {"kind": "constant", "start": 0.0}}],
    )
    name: str | None = Field(
        None,
        max_length=200,
        description="Default: the parent's, + @k, + '+path=value,...' for each override.",
    )
    noise_clock: Literal["continue", "restart"] = Field(
        "continue",
        description="`continue`: the noise schedule goes on at step k as if the run had had "
        "it from step 0; `restart`: its t = 0 is step k, over the rest of the run.",
    )


def available(session: Session, settings: Settings, experiment: Experiment) -> dict[int, str]:
    """The steps `experiment` can be forked at, each with its checkpoint (relative to the
    checkpoint directory): its own kept steps, and for a fork, its lineage's up to its fork
    step (the first k steps of a fork are its parent's)."""
    chain = repo.lineage(session, experiment)
    out: dict[int, str] = {}
    cap: int | None = None
    for experiment_id, at_step in reversed(chain):  # the experiment first, then its parents
        if at_step is not None:  # an ancestor: its steps up to where its line forked
            cap = at_step if cap is None else min(cap, at_step)
        for step in kept_steps(kept_dir(settings, experiment_id)):
            if (cap is None or step <= cap) and step not in out:
                out[step] = f"{experiment_id}/kept/{kept_name(step)}"
    return dict(sorted(out.items()))


def create(
    *,
    session: Session,
    settings: Settings,
    principal: Principal,
    parent: Experiment,
    request: ForkRequest,
) -> Experiment:
    """The queued fork of `parent`, or a 422 naming `at_step` or the override at fault."""
    steps = available(session, settings, parent)
    if request.at_step not in steps:
        listed = ", ".join(map(str, steps)) or "none (it kept no checkpoint yet)"
        message = f"experiment {parent.id!r} has no kept checkpoint at step {request.at_step}; "
        message += f"kept steps: {listed}"
        raise InvalidSpec(
            f"at_step: {message}",
            errors=[{"path": "at_step", "message": message}],
            available_steps=list(steps),
        )
    overrides = dict(request.overrides)
    if request.name is not None:
        overrides["name"] = request.name
    elif "name" not in overrides:
        overrides["name"] = default_name(parent, request.at_step, request.overrides)
    try:
        spec = forks.apply(parent.spec, overrides)
        forks.check_step(spec, request.at_step)
    except forks.ForkError as exc:
        path = (
            "name" if exc.path == "name" and request.name is not None else f"overrides.{exc.path}"
        )
        raise InvalidSpec(
            f"{path}: {exc.message}", errors=[{"path": path, "message": exc.message}]
        ) from None
    record = {
        "parent_id": parent.id,
        "at_step": request.at_step,
        "overrides": request.overrides,
        "noise_clock": request.noise_clock,
        "checkpoint": steps[request.at_step],
    }
    return service.create(
        session=session, settings=settings, principal=principal, spec=spec, fork=record
    )


def default_name(parent: Experiment, at_step: int, overrides: dict[str, Any]) -> str:
    """`parent@step`, then `+path=value,...` for what the fork changed.

    A sweep member's name is made from its point and seed (`sweep/activation.params.sigma=
    0.3/seed=0`): a fork named `parent@step` alone that changed one of those kept a name
    that no longer said what it ran. The changes are appended rather than substituted,
    because up to the fork step the run was the parent's, exactly. A name given with the
    fork (or in its overrides) is kept as it is.
    """
    name = f"{parent.name or parent.id}@{at_step}"
    changed = label(overrides) if overrides else ""
    if changed and len(name) + 1 + len(changed) <= NAME_MAX:
        return f"{name}+{changed}"
    if changed:
        return f"{name}+{len(overrides)} changes"[:NAME_MAX]
    return name[:NAME_MAX]


def inherited_through(experiment: Experiment) -> int | None:
    """The last step whose points a read of `experiment` takes from its lineage."""
    return int(experiment.fork["at_step"]) if experiment.fork else None
