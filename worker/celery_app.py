"""The worker's Celery app: `celery -A worker.celery_app worker` (or `actlab worker`)."""

from __future__ import annotations

from core.queue import make_celery
from core.settings import get_settings

app = make_celery(get_settings())
app.conf.update(include=["worker.tasks"])
