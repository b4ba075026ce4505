"""Thin Celery tasks: they carry an experiment id and hand it to the runner."""

from __future__ import annotations

from service.queue import RUN_EXPERIMENT
from service.settings import get_settings
from worker import runner
from worker.celery_app import app


@app.task(name=RUN_EXPERIMENT, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_experiment(experiment_id: str) -> str:
    """Train one experiment to its end (or until it is stopped); returns the final status."""
    return runner.run(experiment_id, get_settings())
