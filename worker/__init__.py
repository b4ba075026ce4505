"""actlab's worker: the Celery app, its tasks, and the training engine (worker.engine)."""
