"""The `pack` job kind: the members of a pack, claimed together, train as one stacked model
in this process.

Each member keeps its own `StoreCallbacks` (so progress, metrics, checkpoints and the final
status go through the same fenced writes as an experiment alone); one heartbeat thread
renews every member's lease; a member that leaves the pack is written at once.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session

from core.artifacts import checkpoint_path, kept_dir
from core.settings import Settings
from core.spec import ExperimentSpec, known
from core.store import packs
from core.store.lifecycle import Claim
from worker.engine.packed import Outcome, PackMember, train_pack
from worker.jobs.attempt import WORKER_NAME, StoreCallbacks, finish, fork_start

log = logging.getLogger("actlab.worker")


def applies(session: Session, experiment_id: str) -> bool:
    """A member of a pack."""
    return packs.pack_of(session, experiment_id) is not None


def claim(session: Session, experiment_id: str, settings: Settings) -> list[Claim]:
    """Every claimable member of the experiment's pack, in one transaction."""
    pack_id = packs.pack_of(session, experiment_id)
    assert pack_id is not None
    return packs.claim_pack(
        session, pack_id, worker=WORKER_NAME, lease_seconds=settings.lease_seconds
    )


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


def run(claims: list[Claim], settings: Settings) -> dict[str, str]:
    """Train the claimed members packed; returns each member's final status by id."""
    ids = [c.experiment_id for c in claims]
    log.info("pack of %d on %s: %s", len(claims), WORKER_NAME, ", ".join(ids))
    callbacks = [StoreCallbacks(c, settings) for c in claims]
    beat = PackHeartbeat(callbacks, settings)
    ended: dict[str, str] = {}
    started = time.monotonic()

    def on_outcome(i: int, outcome: Outcome | BaseException) -> None:
        beat.leave(callbacks[i])
        ended[ids[i]] = finish(claims[i], callbacks[i], settings, outcome, started)

    beat.start()
    try:
        for c in claims:
            known.require(c.spec)
        members = [
            PackMember(
                ExperimentSpec.model_validate(c.spec),
                cb,
                checkpoint_path(settings, c),
                cb.recorded,
                kept_dir(settings, c.experiment_id),
                fork_start(c, settings),
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
