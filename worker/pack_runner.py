"""Run a pack: its members, claimed together, train as one stacked model in this process.

Each member keeps its own `StoreCallbacks` (so progress, metrics, checkpoints and the final
status go through the same fenced writes as an experiment alone); one heartbeat thread
renews every member's lease; a member that leaves the pack is written at once.
"""

from __future__ import annotations

import logging
import threading
import time

from service.settings import Settings
from service.spec import ExperimentSpec, plugins
from service.store.lifecycle import Claim
from worker import engine
from worker.engine.packed import Outcome, PackMember, train_pack
from worker.runner import (
    WORKER_NAME,
    StoreCallbacks,
    checkpoint_path,
    end,
    failure,
    succeeded,
)

log = logging.getLogger("actlab.worker")


class PackHeartbeat:
    """One lease heartbeat for every member still in the pack."""

    def __init__(self, members: list[StoreCallbacks], settings: Settings) -> None:
        self.members, self.settings = list(members), settings
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="pack-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def leave(self, member: StoreCallbacks) -> None:
        with self._lock:
            if member in self.members:
                self.members.remove(member)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stopped.wait(self.settings.heartbeat_seconds):
            with self._lock:
                members = list(self.members)
            for member in members:
                member.renew_lease()


def run_pack(claims: list[Claim], settings: Settings) -> dict[str, str]:
    """Train the claimed members packed; returns each member's final status by id."""
    ids = [c.experiment_id for c in claims]
    log.info("pack of %d on %s: %s", len(claims), WORKER_NAME, ", ".join(ids))
    callbacks = [StoreCallbacks(c, settings) for c in claims]
    beat = PackHeartbeat(callbacks, settings)
    ended: dict[str, str] = {}
    started = time.monotonic()

    def on_outcome(i: int, outcome: Outcome | Exception) -> None:
        beat.leave(callbacks[i])
        ended[ids[i]] = _end(claims[i], callbacks[i], settings, outcome, started)

    beat.start()
    try:
        for c in claims:
            plugins.require(c.spec)
        members = [
            PackMember(
                ExperimentSpec.model_validate(c.spec),
                cb,
                checkpoint_path(settings, c),
                cb.recorded,
            )
            for c, cb in zip(claims, callbacks, strict=True)
        ]
        train_pack(members, data_dir=settings.data_dir, on_outcome=on_outcome)
    except Exception as exc:  # the pack itself failed: every member still in it fails
        log.exception("pack %s failed", ids)
        for i, experiment_id in enumerate(ids):
            if experiment_id not in ended:
                on_outcome(i, exc)
    finally:
        beat.close()
    log.info("pack ended: %s", ended)
    return ended


def _end(
    claim: Claim,
    callbacks: StoreCallbacks,
    settings: Settings,
    outcome: Outcome | Exception,
    started: float,
) -> str:
    if isinstance(outcome, engine.TrainResult):
        try:
            return end(claim, settings, succeeded(claim, settings, outcome, started))
        except Exception as exc:  # exporting the weights failed
            outcome = exc
    return end(
        claim,
        settings,
        failure(claim, outcome, settings=settings, checkpoint_at=callbacks.checkpoint_at),
    )
