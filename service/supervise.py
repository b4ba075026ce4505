"""Supervision of what `actlab up` starts: a child that dies is reaped and started again.

`actlab up` runs the embedded broker and a worker as its own children. Without supervision a
`kill -9` of either left a zombie and a deployment that looked alive (`/healthz` 200) while
nothing could be queued or trained. Here one thread polls each child; a dead one is reaped
(`Popen.poll` waits for it) and restarted after a delay that doubles from `first_delay_s`
to `max_delay_s` while restarts keep failing or the child keeps dying young, and starts
again from `first_delay_s` once it has stayed up for `max_delay_s`. Every death, restart and
failed restart is logged. `/healthz` reads `snapshot()` (see service/health/router.py).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("actlab.up")

# Starts the child and returns its process once it is ready (or raises).
Starter = Callable[[], "subprocess.Popen[bytes]"]


@dataclass
class _Child:
    """One supervised child: how to start it, its process and what happened to it."""

    name: str
    start: Starter
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    delay_s: float = 0.0
    next_try_at: float | None = None  # set while it is down: when the next start is due
    last_exit: str | None = None


class Supervisor:
    """Keeps children alive; `stop()` ends supervision (the caller then stops them)."""

    def __init__(
        self, *, first_delay_s: float = 0.5, max_delay_s: float = 10.0, poll_s: float = 0.2
    ) -> None:
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.poll_s = poll_s
        self._children: dict[str, _Child] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, process: subprocess.Popen[bytes], restart: Starter) -> None:
        """Supervise a started child; `restart` starts it again (and raises if it cannot)."""
        child = _Child(name, restart, process, time.monotonic(), delay_s=self.first_delay_s)
        self._children[name] = child

    def process(self, name: str) -> subprocess.Popen[bytes] | None:
        """The child's present process (a restart replaces it)."""
        child = self._children.get(name)
        return child.process if child else None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._loop, name="actlab-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more restarts: shutting down stops the children on purpose."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Each child's status (running, or restarting while it is down), pid and restarts.

        Cheap and non-blocking: /healthz calls it on the event loop."""
        states = {}
        for name, child in self._children.items():
            down = child.next_try_at is not None
            state: dict[str, Any] = {
                "status": "restarting" if down else "running",
                "pid": None if down or child.process is None else child.process.pid,
                "restarts": child.restarts,
            }
            if child.last_exit is not None:
                state["last_exit"] = child.last_exit
            states[name] = state
        return states

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            for child in self._children.values():
                if self._stop.is_set():
                    return
                try:
                    self._check(child)
                except Exception:  # a bug here must not end supervision of the others
                    log.exception("supervising %s failed", child.name)

    def _check(self, child: _Child) -> None:
        now = time.monotonic()
        if child.next_try_at is None:
            code = child.process.poll() if child.process else None  # reaps a dead child
            if code is None:
                return
            self._died(child, code, now)
        if now >= (child.next_try_at or now):
            self._restart(child)

    def _died(self, child: _Child, code: int, now: float) -> None:
        """Note the death and when to start it again (sooner if it had run a while)."""
        if now - child.started_at >= self.max_delay_s:
            child.delay_s = self.first_delay_s
        child.last_exit = _exit_text(code)
        child.next_try_at = now + child.delay_s
        pid = child.process.pid if child.process else None
        log.warning(
            "%s (pid %s) exited (%s); restarting in %g s",
            child.name,
            pid,
            child.last_exit,
            child.delay_s,
        )

    def _restart(self, child: _Child) -> None:
        try:
            child.process = child.start()
        except Exception as exc:
            child.delay_s = min(child.delay_s * 2, self.max_delay_s)
            child.next_try_at = time.monotonic() + child.delay_s
            log.error("%s did not restart (%s); next try in %g s", child.name, exc, child.delay_s)
            return
        child.started_at = time.monotonic()
        child.restarts += 1
        child.next_try_at = None
        log.warning(
            "%s restarted: pid %s (restart %d)", child.name, child.process.pid, child.restarts
        )
        child.delay_s = min(child.delay_s * 2, self.max_delay_s)


def _exit_text(code: int) -> str:
    """`signal SIGKILL` for a child killed by a signal, else `exit code N`."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
