"""The `single` job kind: one experiment, trained alone."""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session

from core.artifacts import checkpoint_path, kept_dir
from core.settings import Settings
from core.spec import ExperimentSpec, known
from core.store import lifecycle
from core.store.lifecycle import Claim
from worker import engine
from worker.jobs.attempt import WORKER_NAME, StoreCallbacks, finish, fork_start

log = logging.getLogger("actlab.worker")


def applies(session: Session, experiment_id: str) -> bool:
    """Every experiment that no other kind takes."""
    return True


def claim(session: Session, experiment_id: str, settings: Settings) -> list[Claim]:
    """The experiment's claim, or none if it is not claimable."""
    taken = lifecycle.claim(
        session, experiment_id, worker=WORKER_NAME, lease_seconds=settings.lease_seconds
    )
    return [taken] if taken is not None else []


def run(claims: list[Claim], settings: Settings) -> dict[str, str]:
    """Train the one claimed experiment; its final status by id."""
    (claimed,) = claims
    context = {
        "experiment_id": claimed.experiment_id,
        "attempt": claimed.attempt,
        "worker": WORKER_NAME,
    }
    log.info(
        "experiment %s: attempt %d, token %d",
        claimed.experiment_id,
        claimed.attempt,
        claimed.token,
        extra=context,
    )
    callbacks = StoreCallbacks(claimed, settings)
    callbacks.start()
    started = time.monotonic()
    try:
        try:
            known.require(claimed.spec)  # a plugin this worker lacks: say which
            spec = ExperimentSpec.model_validate(claimed.spec)
            outcome: engine.TrainResult | BaseException = engine.train(
                spec,
                callbacks=callbacks,
                data_dir=settings.data_dir,
                checkpoint_path=checkpoint_path(settings, claimed),
                resume_from=callbacks.recorded,
                keep_dir=kept_dir(settings, claimed.experiment_id),
                fork=fork_start(claimed, settings),
            )
        except Exception as exc:
            outcome = exc
        status = finish(claimed, callbacks, settings, outcome, started)
    finally:
        callbacks.close()
    log.info("experiment %s ended %s", claimed.experiment_id, status, extra=context)
    return {claimed.experiment_id: status}
