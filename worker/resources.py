"""What this worker has (its device and memory, reported to the scheduler) and what a run
uses while it trains (recorded as `sys/*` metrics beside the run's own)."""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import psutil

from core.settings import Settings, get_settings
from core.store import workers
from core.store.db import session_scope

log = logging.getLogger("actlab.worker")

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Worker:
    name: str

    @cached_property
    def device(self) -> str:
        import torch

        if torch.cuda.is_available():
            return f"cuda:0 {torch.cuda.get_device_name(0)}"
        return "cpu"

    @cached_property
    def memory_bytes(self) -> int:
        """What a run may use here: ACTLAB_WORKER_MEMORY_BYTES, else the GPU's memory, else
        the machine's RAM (the memory estimate of core/spec/estimate.py is compared to it)."""
        configured = get_settings().worker_memory_bytes
        if configured is not None:
            return configured
        if self.device.startswith("cuda"):
            import torch

            return int(torch.cuda.get_device_properties(0).total_memory)
        return int(psutil.virtual_memory().total)


WORKER = _Worker(WORKER_NAME)


def report(settings: Settings) -> None:
    """Register this worker (or renew its entry) in the registry."""
    with session_scope(settings.resolved_database_url) as session:
        workers.seen(
            session, name=WORKER.name, device=WORKER.device, memory_bytes=WORKER.memory_bytes
        )


def withdraw(settings: Settings) -> None:
    with session_scope(settings.resolved_database_url) as session:
        workers.gone(session, WORKER.name)


def start_registry_thread(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Report now and every heartbeat until `stop`; withdraw when stopped."""

    def loop() -> None:
        while True:
            try:
                report(settings)
            except Exception:  # the database may be briefly away
                log.exception("could not report this worker")
            if stop.wait(settings.heartbeat_seconds):
                break
        try:
            withdraw(settings)
        except Exception:
            log.exception("could not withdraw this worker")

    thread = threading.Thread(target=loop, name="actlab-registry", daemon=True)
    thread.start()
    return thread


class Usage:
    """What this process uses: resident memory, CPU percent since the last reading, and on
    a GPU the most memory PyTorch held and (through NVML, when present) the GPU's
    utilisation. Read with each evaluation's metrics, at most every `every_s` seconds
    (`due`)."""

    def __init__(self, every_s: float = 0.0) -> None:
        self.every_s = every_s
        self._next = 0.0
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first reading starts the interval
        self._lock = threading.Lock()
        self._nvml, self._handle = _nvml()

    def due(self) -> dict[str, float]:
        """A reading if `every_s` passed since the last one, else nothing."""
        now = time.monotonic()
        if now < self._next:
            return {}
        self._next = now + self.every_s
        return self.read()

    def read(self) -> dict[str, float]:
        with self._lock:
            values = {
                "sys/rss_bytes": float(self._process.memory_info().rss),
                "sys/cpu_percent": float(self._process.cpu_percent(None)),
            }
        if WORKER.device.startswith("cuda"):
            import torch

            values["sys/gpu_memory_bytes"] = float(torch.cuda.max_memory_allocated(0))
            if self._nvml is not None:
                rates = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
                values["sys/gpu_utilization"] = float(rates.gpu)
        return values


def _nvml() -> tuple[Any, Any]:
    """NVML (the `nvidia-ml-py` package) and GPU 0's handle; (None, None) where there is no
    GPU or no NVML."""
    if not WORKER.device.startswith("cuda"):
        return None, None
    try:
        nvml = importlib.import_module("pynvml")
        nvml.nvmlInit()
        return nvml, nvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:
        return None, None
