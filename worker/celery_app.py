"""The worker's Celery app: `celery -A worker.celery_app worker` (or `actlab worker`)."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from core.queue import make_celery
from core.settings import get_settings

# The longest wait between two tries to reach a broker that went away.
RECONNECT_MAX_S = 1.0


class Consumer(CeleryConsumer):
    """Celery's consumer, reconnecting to a lost broker every second at most.

    kombu's default waits 2, 4, 6 ... up to 30 s between tries, so after an outage of a
    minute a worker took up to half a minute more to take work again; a run submitted
    during the outage (core/dispatch.py) must start within seconds of the broker's return.
    """

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = partial(
            conn.ensure_connection,
            interval_start=0.2,
            interval_step=0.2,
            interval_max=RECONNECT_MAX_S,
        )
        return super().ensure_connected(conn)


app = make_celery(get_settings())
app.conf.update(
    include=["worker.tasks"],
    worker_consumer=Consumer,  # a class, not an import string: the import graph sees it
    # Tries once a second: kombu's 100 would end the worker after a two-minute outage.
    broker_connection_max_retries=None,
)
