"""Thin Celery tasks: they carry an experiment id and hand it to the job kinds (worker.jobs)."""

from __future__ import annotations

from core.queue import RUN_EXPERIMENT
from core.settings import get_settings
from worker import jobs
from worker.celery_app import app


@app.task(name=RUN_EXPERIMENT, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_experiment(experiment_id: str) -> str:
    """Train one experiment to its end (or until it is stopped); returns the final status."""
    return jobs.run(experiment_id, get_settings())
