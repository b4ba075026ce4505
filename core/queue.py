"""The Celery configuration shared by the API (which sends) and the workers (which run).

The API sends by task name with an experiment id only; it never imports worker code.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.settings import Settings

RUN_EXPERIMENT = "actlab.run_experiment"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Settings that make at-least-once delivery safe for long GPU jobs."""
    return {
        "broker_url": settings.resolved_broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Longer than any lease: Redis must not redeliver a task that is still running.
            "visibility_timeout": settings.visibility_timeout_seconds,
        },
        "task_default_queue": settings.queue,
        "task_acks_late": True,  # ack after the task ran, so a dead worker's task is redelivered
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # a GPU worker holds one experiment, not a backlog
        "task_ignore_result": True,  # state lives in the database, not in a result backend
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def make_celery(settings: Settings, name: str = "actlab") -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app


_senders: dict[tuple[str, str], Celery] = {}


def _sender(settings: Settings) -> Celery:
    # One client app (and its connection pool) per broker and queue, per process.
    key = (settings.resolved_broker_url, settings.queue)
    if key not in _senders:
        _senders[key] = make_celery(settings, name="actlab-api")
    return _senders[key]


def send_run(settings: Settings, experiment_id: str) -> None:
    """Enqueue an experiment by id (call after the row is committed)."""
    app = _sender(settings)
    app.send_task(RUN_EXPERIMENT, args=[experiment_id], queue=settings.queue)


def ping_broker(settings: Settings, timeout: float = 2.0) -> None:
    """Raise if the broker cannot be reached within `timeout` seconds."""
    app = _sender(settings)
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


def broker_client(settings: Settings, timeout: float = 2.0, *, retry: bool = True) -> redis.Redis:
    """A plain Redis client on the broker (a TCP URL or the embedded server's socket).

    `timeout` bounds connecting and each reply; `retry=False` makes a failure raise at
    once instead of redis-py's retries with backoff (seconds of sleeping while it is down).
    """
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if not retry:
        options["retry"] = Retry(NoBackoff(), 0)
    url = settings.resolved_broker_url
    if url.startswith("redis+socket://"):
        path = url.removeprefix("redis+socket://")
        return redis.Redis(unix_socket_path=path, **options)
    return redis.Redis.from_url(url, **options)


def pending_runs(settings: Settings) -> set[str]:
    """Experiment ids that have a run message in the broker: waiting in the queue, or
    delivered to a worker and not yet acknowledged (kombu keeps those in `unacked`)."""
    client = broker_client(settings)
    try:
        waiting = client.lrange(settings.queue, 0, -1)
        delivered = client.hvals("unacked")
    finally:
        client.close()
    ids = {_run_id(json.loads(raw)) for raw in waiting}  # type: ignore[union-attr]
    # `unacked` is one hash for the whole Redis database: [message, exchange, routing key]
    # of every queue's deliveries. Only this queue's count (another deployment, or another
    # test, may share the database).
    for raw in delivered:  # type: ignore[union-attr]
        message, _exchange, routing_key = json.loads(raw)
        if routing_key == settings.queue:
            ids.add(_run_id(message))
    ids.discard(None)
    return ids  # type: ignore[return-value]


def _run_id(message: dict[str, Any]) -> str | None:
    """The experiment id a kombu message carries, None for any other task."""
    if message.get("headers", {}).get("task") != RUN_EXPERIMENT:
        return None
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return str(args[0]) if args else None
