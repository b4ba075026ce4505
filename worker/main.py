"""The worker process: Celery's solo pool (CUDA is never forked), a reaper, graceful stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery import signals

from core.settings import Settings
from core.store import publish
from worker import reaper, resources
from worker.jobs.attempt import SHUTDOWN

log = logging.getLogger("actlab.worker")


def _on_shutdown(**_: Any) -> None:
    # Celery's warm shutdown waits for the running task; this makes the task itself
    # checkpoint and hand its experiment back instead of training to the end.
    SHUTDOWN.set()


def run_worker(settings: Settings, *, name: str | None = None, loglevel: str | None = None) -> int:
    """Consume the queue until SIGTERM/SIGINT; returns the exit code."""
    from worker.celery_app import app

    signals.worker_shutting_down.connect(_on_shutdown, weak=False)
    publish.enable(settings)  # committed events, points and progress reach the live streams
    stop = threading.Event()
    _join(settings)
    resources.start_registry_thread(settings, stop)  # what this worker has, while it lives
    reaper.start_reaper_thread(settings, stop)
    reaper.start_resend_thread(settings, stop)  # runs submitted while the broker was down
    try:
        app.worker_main(worker_argv(settings, name=name, loglevel=loglevel))
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        stop.set()
    return 0


def _join(settings: Settings) -> None:
    """Register before consuming, and wake a worker for queued work whose messages were
    spent while no worker could take it (too big for the others, an owner at its limit)."""
    from worker import jobs

    try:
        resources.report(settings)
        jobs.wake_if_queued(settings)
    except Exception:  # the database may be briefly away; the registry thread retries
        log.exception("could not register this worker")


def worker_argv(settings: Settings, *, name: str | None, loglevel: str | None) -> list[str]:
    """Celery's worker arguments: one process, the solo pool (no fork after CUDA init)."""
    node = name or f"actlab@{socket.gethostname()}-{os.getpid()}"
    return [
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        settings.queue,
        "-n",
        node,
        f"--loglevel={loglevel or settings.log_level}",
    ]
