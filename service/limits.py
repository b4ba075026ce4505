"""Caps on what one request may ask for; each rejection names its setting."""

from __future__ import annotations

from sqlalchemy.orm import Session

from activations import ParamError
from core import scheduling
from core.settings import Settings
from core.spec import ExperimentSpec
from core.spec.estimate import Footprint, footprint, kept_checkpoints
from core.spec.horizon import build_schedule, horizon
from core.store import experiments as experiments_repo
from service.errors import InvalidSpec, LimitExceeded


def check_spec(spec: ExperimentSpec, settings: Settings) -> Footprint:
    """Raise LimitExceeded if the spec asks for more than this server allows; else the run's
    memory estimate (the scheduler matches it to the workers')."""
    training = spec.training
    if training.epochs > settings.max_epochs:
        raise LimitExceeded(
            f"training.epochs={training.epochs} is too many",
            setting="ACTLAB_MAX_EPOCHS",
            limit=settings.max_epochs,
        )
    if training.max_steps is not None and training.max_steps > settings.max_steps:
        raise LimitExceeded(
            f"training.max_steps={training.max_steps} is too many",
            setting="ACTLAB_MAX_STEPS",
            limit=settings.max_steps,
        )
    # Both from the model the registration's builder makes on the meta device: exact.
    check_schedules(spec)
    try:
        size = footprint(spec)
    except ParamError as exc:  # a unit that cannot be built at its layer's width
        path = f"{_unit_path(spec, exc.param)}.params.{exc.param}"
        raise InvalidSpec(f"{path}: {exc}", errors=[{"path": path, "message": str(exc)}]) from None
    if size.parameters > settings.max_model_parameters:
        raise LimitExceeded(
            f"the model has {size.parameters} parameters",
            setting="ACTLAB_MAX_MODEL_PARAMETERS",
            limit=settings.max_model_parameters,
        )
    check_memory(size, settings)
    check_kept(spec, size, settings)
    return size


def check_kept(spec: ExperimentSpec, size: Footprint, settings: Settings) -> None:
    """Raise LimitExceeded if the run's kept checkpoints could take more disk than allowed."""
    files, total = kept_checkpoints(spec, size)
    if total > settings.max_kept_bytes:
        each = total // max(files, 1)
        raise LimitExceeded(
            f"training.keep_checkpoints keeps up to {files} checkpoints of about "
            f"{each / 2**20:.1f} MiB, {_gib(total)} on disk: keep fewer (a larger `every`, a "
            "smaller `max_kept`, or `every: 0` with the `at` steps to fork at)",
            setting="ACTLAB_MAX_KEPT_BYTES",
            limit=settings.max_kept_bytes,
            estimate_bytes=total,
            errors=[
                {
                    "path": "training.keep_checkpoints",
                    "message": f"up to {files} kept checkpoints, {_gib(total)} on disk",
                }
            ],
        )


def check_schedules(spec: ExperimentSpec) -> None:
    """Build both schedules over the run's horizon, as the worker will: a warmup as long as
    the run (or any other rule that needs the horizon) is a 422 at submit, not a failure
    in the worker."""
    h = horizon(spec)
    for path, schedule in (
        ("noise_schedule", spec.noise_schedule),
        ("optimizer.lr_schedule", spec.optimizer.lr_schedule),
    ):
        try:
            build_schedule(schedule, h)
        except ParamError as exc:
            if exc.param == "total":  # the run's horizon, not a field: the warmup does not fit
                field, unit = f"{path}.warmup", schedule.unit
                total = h.total_steps if unit == "step" else h.total_epochs
                detail = (
                    f"a warmup of {schedule.warmup} {unit}s must be shorter than the run "
                    f"({total} {unit}s)"
                )
            else:
                name = exc.param
                field = f"{path}.{name}" if name in ("start", "end") else f"{path}.params.{name}"
                detail = str(exc)
            raise InvalidSpec(
                f"{field}: {detail}", errors=[{"path": field, "message": detail}]
            ) from None


def check_memory(size: Footprint, settings: Settings) -> None:
    """Raise LimitExceeded if the worker would need more memory than the server allows
    (core/spec/estimate.py)."""
    parts, total = size.parts, size.total_bytes
    if total > settings.max_memory_bytes:
        shown = ", ".join(f"{name} {_gib(size)}" for name, size in parts.items())
        raise LimitExceeded(
            f"the run needs about {_gib(total)} of memory ({shown})",
            setting="ACTLAB_MAX_MEMORY_BYTES",
            limit=settings.max_memory_bytes,
            estimate_bytes=total,
            parts=parts,
        )


def _unit_path(spec: ExperimentSpec, param: str) -> str:
    """Which of the spec's units set `param`: the activation, else the recurrent gates'."""
    if spec.activation.params.get(param) not in (None, 1):
        return "activation"
    return "model.gate_activation"


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def check_priority(priority: int, allowed: int, *, field: str = "priority") -> None:
    """A 422 naming `field` if the caller's key may not ask for `priority`."""
    if priority > allowed:
        detail = (
            f"priority {priority} is above this key's limit of {allowed}"
            " (an admin raises it: `actlab keys set OWNER --max-priority P`)"
        )
        raise InvalidSpec(f"{field}: {detail}", errors=[{"path": field, "message": detail}])


def refuse_if_queue_full(
    session: Session, owner_id: str | None, new: int, settings: Settings
) -> None:
    """Raise 429 if the owner's queue already has no room for `new` more, without taking the
    owner's lock: one count, cheap enough to run before the validation that builds models,
    so an owner at the cap is refused at once (a sweep's validation takes seconds). Only
    `check_queue`, just before the insert, is exact under concurrency."""
    queued = experiments_repo.count_queued(session, owner_id)
    if queued + new > settings.max_queued_per_owner:
        raise LimitExceeded(
            f"{queued} experiments already queued, {new} more requested",
            setting="ACTLAB_MAX_QUEUED_PER_OWNER",
            limit=settings.max_queued_per_owner,
            status=429,
        )


def check_queue(session: Session, owner_id: str | None, new: int, settings: Settings) -> None:
    """Raise 429 if `new` more queued experiments would exceed the owner's cap.

    The owner's inserts are serialised first (core.scheduling.lock_owner), so the count
    and the insert it admits are one step: concurrent requests cannot both pass the cap.
    """
    scheduling.lock_owner(session, owner_id)
    refuse_if_queue_full(session, owner_id, new, settings)


def check_sweep_size(total: int, settings: Settings) -> None:
    """Raise LimitExceeded if a sweep would hold more than `total` experiments allow."""
    if total > settings.max_sweep_size:
        raise LimitExceeded(
            f"a sweep of {total} experiments is too large",
            setting="ACTLAB_MAX_SWEEP_SIZE",
            limit=settings.max_sweep_size,
        )
