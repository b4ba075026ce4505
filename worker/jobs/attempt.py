"""One attempt at an experiment, whatever the job kind: its store callbacks and its end.

`StoreCallbacks` is the worker's bridge from the engine (which knows nothing of the database)
to the store: progress, metrics and checkpoints are written under the attempt's lease, and
every write presents its fencing token, so a stale duplicate cannot write. `finish` turns how
a member's training ended (its result, or the exception) into the status written for it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import search
from core.artifacts import resolve_checkpoint, weights_path
from core.diskfull import is_disk_full
from core.dispatch import send_runs
from core.examples import encode_hits
from core.settings import Settings
from core.spec import known
from core.store import experiments as repo
from core.store import lifecycle
from core.store import metrics as metrics_repo
from core.store.db import session_scope
from core.store.lifecycle import Claim, LeaseLost
from core.store.models import Experiment, Status
from worker import engine
from worker.resources import WORKER_NAME, Usage

log = logging.getLogger("actlab.worker")

SHUTDOWN = threading.Event()  # set by the worker's SIGTERM handler: checkpoint and hand back


class StoreCallbacks(engine.Callbacks):
    """Writes progress, metrics and checkpoints under the lease; tells the engine to stop."""

    def __init__(self, claim: Claim, settings: Settings) -> None:
        self.claim = claim
        self.settings = settings
        self.url = settings.resolved_database_url
        self.stop_reason: str | None = None
        self._lock = threading.Lock()
        self._progress: dict[str, Any] = {}
        self._stopped = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        # The checkpoint the store points at; replaced (and the old file removed) on each save.
        self.recorded = resolve_checkpoint(settings, claim.checkpoint_path)
        # (epoch, step) of the last checkpoint this attempt wrote.
        self.checkpoint_at: tuple[int, int] | None = None
        self._usage = Usage()
        # An adaptive sweep's member pauses at its rung's step (core/search.py).
        self.pause_at_step = claim.rung_step

    # -- lease -------------------------------------------------------------------------------
    def start(self) -> None:
        self._heartbeat.start()

    def close(self) -> None:
        self._stopped.set()
        if self._heartbeat.is_alive():
            self._heartbeat.join(timeout=5)

    def renew_lease(self) -> None:
        """One heartbeat (a pack's shared heartbeat thread calls this for each member)."""
        self._renew()

    def _beat(self) -> None:
        while not self._stopped.wait(self.settings.heartbeat_seconds):
            self._renew()

    def _renew(self, **values: Any) -> None:
        with self._lock:
            values = {**self._progress, **values}
            self._progress = {}
        try:
            with session_scope(self.url) as session:
                lease = lifecycle.renew(
                    session, self.claim, lease_seconds=self.settings.lease_seconds, **values
                )
        except LeaseLost:
            self.stop_reason = "lease_lost"
            return
        except Exception:  # a transient database error must not kill training
            log.exception("heartbeat failed for %s", self.claim.experiment_id)
            return
        if lease.status == Status.cancelling.value:
            # A cancel wins over a preemption asked before it.
            if self.stop_reason in (None, "preempt"):
                self.stop_reason = "cancel"
        elif lease.preempt:
            self.stop_reason = self.stop_reason or "preempt"

    # -- engine callbacks --------------------------------------------------------------------
    def on_start(self, *, total_steps: int, total_epochs: int, resumed_from_step: int) -> None:
        self._renew(progress_total=total_steps)
        if resumed_from_step:
            with session_scope(self.url) as session:
                repo.add_event(
                    session,
                    self.claim.experiment_id,
                    "log",
                    f"resumed from checkpoint at step {resumed_from_step}",
                )

    def on_note(self, message: str) -> None:
        with session_scope(self.url) as session:
            repo.add_event(session, self.claim.experiment_id, "log", message)

    def on_progress(self, *, epoch: int, step: int, total_steps: int) -> None:
        # Cheap: remembered here, written by the next heartbeat or metrics write.
        with self._lock:
            self._progress = {
                "progress_epoch": epoch,
                "progress_step": step,
                "progress_total": total_steps,
            }

    def on_metrics(self, *, step: int, epoch: int, values: dict[str, float]) -> None:
        values = {**values, **self._usage.due()}  # what the run used, beside what it learnt
        with self._lock:
            progress = {**self._progress, "progress_epoch": epoch, "progress_step": step}
            self._progress = {}
        with session_scope(self.url) as session:
            # The fenced renew and the inserts share a transaction: a stale token writes nothing.
            lifecycle.renew(
                session, self.claim, lease_seconds=self.settings.lease_seconds, **progress
            )
            metrics_repo.insert_points(
                session, self.claim.experiment_id, step=step, epoch=epoch, values=values
            )

    def on_checkpoint(self, *, path: Path, step: int, epoch: int) -> None:
        # Fenced: a worker that lost its lease cannot point the store at its file.
        root = self.settings.resolved_checkpoint_dir
        stored = path.relative_to(root) if path.is_relative_to(root) else path
        with self._lock:
            self._progress = {}  # older than the checkpoint: never written after it
        with session_scope(self.url) as session:
            lifecycle.renew(
                session,
                self.claim,
                lease_seconds=self.settings.lease_seconds,
                checkpoint_path=str(stored),
                progress_step=step,
                progress_epoch=epoch,
            )
        self.checkpoint_at = (epoch, step)
        previous, self.recorded = self.recorded, path
        if previous is not None and previous != path:
            previous.unlink(missing_ok=True)  # an earlier attempt's file, no longer referenced

    def may_checkpoint(self) -> bool:
        return self.stop_reason != "lease_lost"

    def should_stop(self) -> str | None:
        if SHUTDOWN.is_set():
            return "shutdown"
        return self.stop_reason


def finish(
    claim: Claim,
    callbacks: StoreCallbacks,
    settings: Settings,
    outcome: engine.TrainResult | BaseException,
    started: float,
) -> str:
    """Write how the attempt ended: its result (the weights exported first) or why it
    stopped; returns the status written (or 'lease_lost')."""
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


def succeeded(
    claim: Claim, settings: Settings, result: engine.TrainResult, started: float
) -> dict[str, Any]:
    """Export the final weights; the outcome that marks the experiment succeeded."""
    if result.checkpoint_path is not None:
        engine.export_safetensors(
            result.checkpoint_path, weights_path(settings, claim.experiment_id)
        )
    summary = {**result.summary, "wall_time_s": round(time.monotonic() - started, 3)}
    outcome: dict[str, Any] = {"status": Status.succeeded, "summary": summary}
    if result.test_hits is not None:
        outcome["examples"] = encode_hits(result.test_hits.numpy())
    return outcome


def failure(
    claim: Claim,
    exc: BaseException,
    *,
    settings: Settings,
    checkpoint_at: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The outcome of a run that ended with `exc` (a stop request is not a failure).

    After a stop request, progress reads as `checkpoint_at`, the (epoch, step) of the
    checkpoint the next attempt resumes from.
    """
    if isinstance(exc, engine.Diverged):
        return {"status": Status.failed, "reason": "diverged", "message": str(exc)}
    if isinstance(exc, engine.TimeLimitExceeded):
        return {"status": Status.failed, "reason": "timeout", "message": str(exc)}
    if isinstance(exc, engine.Interrupted):
        return {**_interrupted(exc.reason), "progress_at": checkpoint_at}
    if isinstance(exc, LeaseLost):
        return _interrupted("lease_lost")
    if isinstance(exc, engine.CheckpointDiskFull):
        log.error("experiment %s: %s", claim.experiment_id, exc)
        message = public_message(str(exc), settings)
        return {"status": Status.failed, "reason": "disk_full", "message": message}
    if is_disk_full(exc):  # most often the database, refusing a metric or progress write
        log.error("experiment %s: no space left", claim.experiment_id, exc_info=exc)
        message = public_message(disk_full_message(exc), settings)
        return {"status": Status.failed, "reason": "disk_full", "message": message}
    if isinstance(exc, known.MissingPlugin):
        message = f"worker {WORKER_NAME}: {exc}"
        log.error("experiment %s: %s", claim.experiment_id, message)
        return {"status": Status.failed, "reason": "missing_plugin", "message": message}
    # Any other failure is the experiment's, not the worker's.
    log.error(
        "experiment %s failed",
        claim.experiment_id,
        exc_info=exc,
        extra={"experiment_id": claim.experiment_id},
    )
    message = public_message(f"{type(exc).__name__}: {exc}", settings)
    return {"status": Status.failed, "reason": "error", "message": message}


def disk_full_message(exc: BaseException) -> str:
    """What a user reads of a full disk other than the checkpoint volume's."""
    first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return (
        f"no space left on a disk the run writes to ({type(exc).__name__}: {first}); the "
        "metrics written so far are kept: free space (the database's volume, most often), "
        "then retry"
    )


def end(claim: Claim, settings: Settings, outcome: dict[str, Any]) -> str:
    """Write the outcome under the claim's token; returns the status (or 'lease_lost')."""
    if outcome.get("status") is None:
        return "lease_lost"
    return _finish(claim, settings, **outcome)


def public_message(message: str, settings: Settings) -> str:
    """`message` with the server's directories replaced by names: clients read it."""
    places = [
        (settings.resolved_checkpoint_dir, "<checkpoint_dir>"),
        (settings.data_dir, "<data_dir>"),
        (Path.home(), "~"),
    ]
    for path, name in sorted(places, key=lambda p: -len(str(p[0]))):
        message = message.replace(str(path), name)
    return message


def _interrupted(reason: str) -> dict[str, Any]:
    if reason == "cancel":
        return {
            "status": Status.cancelled,
            "reason": "cancelled",
            "message": "cancelled by the user",
        }
    if reason == "shutdown":  # queued is not a failure: no status_reason, just a message
        return {"status": Status.queued, "message": "worker shut down; resumes from checkpoint"}
    if reason == "rung":  # not a failure: the sweep decides whether it goes on
        return {
            "status": Status.paused,
            "reason": "rung",
            "message": "paused at its rung with its checkpoint; the sweep decides next",
        }
    if reason == "preempt":
        return {
            "status": Status.queued,
            "reason": "preempted",
            "message": "preempted by a run of higher priority; resumes from its checkpoint",
        }
    return {"status": None}  # lease lost: another attempt owns the row; write nothing


def _finish(claim: Claim, settings: Settings, *, status: Status, **kwargs: Any) -> str:
    try:
        try:
            _write_end(claim, settings, status=status, **kwargs)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            # A full database: the status event needs room the row's own update may not.
            # Hand the lease back without the event, rather than hold it until it expires
            # and the reaper re-queues a run that meets the same full disk again.
            log.error("experiment %s: ending it without its event", claim.experiment_id)
            _write_end(claim, settings, status=status, event=False, **kwargs)
    except LeaseLost:
        log.warning("experiment %s: lease lost before finishing", claim.experiment_id)
        return "lease_lost"
    if status == Status.queued:
        send_runs(settings, [claim.experiment_id])
    if status != Status.queued:
        decide_rungs(settings, claim.experiment_id)
    return status.value


def _write_end(claim: Claim, settings: Settings, **kwargs: Any) -> None:
    with session_scope(settings.resolved_database_url) as session:
        lifecycle.finish(session, claim, **kwargs)


def decide_rungs(settings: Settings, experiment_id: str) -> None:
    """The sweep's decision once a member paused or ended: its rungs, and an Optuna search's
    next trials (the reaper decides too, so a worker that dies here loses nothing); what it
    promoted or started is sent once committed."""
    try:
        with session_scope(settings.resolved_database_url) as session:
            sweep_id = session.scalar(
                select(Experiment.sweep_id).where(Experiment.id == experiment_id)
            )
            promoted = search.decide(session, sweep_id) if sweep_id else []
    except Exception:  # the reaper's next pass decides
        log.exception("rung decision after %s paused failed", experiment_id)
        return
    send_runs(settings, promoted)


def fork_start(claimed: Claim, settings: Settings) -> engine.ForkStart | None:
    """Where a fork starts (its parent's kept checkpoint), or None for a run of its own."""
    fork = claimed.fork
    if not fork:
        return None
    path = resolve_checkpoint(settings, fork["checkpoint"])
    assert path is not None
    return engine.ForkStart(path, fork["at_step"], fork.get("noise_clock") == "restart")
