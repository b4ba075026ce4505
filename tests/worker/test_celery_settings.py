"""The Celery settings that make at-least-once delivery safe for long GPU jobs."""

from __future__ import annotations

from core.queue import make_celery
from core.settings import Settings
from worker.main import worker_argv


def test_delivery_settings(settings: Settings) -> None:
    conf = make_celery(settings).conf
    assert conf.task_acks_late is True  # a dead worker's task is delivered again
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1  # a worker holds one experiment, no backlog
    assert conf.task_default_queue == settings.queue
    # Redis must not redeliver a task whose lease is still alive.
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility == settings.visibility_timeout_seconds > settings.lease_seconds


def test_worker_is_one_solo_process_on_its_queue(settings: Settings) -> None:
    argv = worker_argv(settings, name="gpu0@box", loglevel=None)
    assert argv[0] == "worker"
    assert "--pool=solo" in argv and "--concurrency=1" in argv  # CUDA is never forked
    assert argv[argv.index("-Q") + 1] == settings.queue
    assert argv[argv.index("-n") + 1] == "gpu0@box"
