"""Drive `docker compose` on a real engine for tests/deploy/test_compose_e2e.py.

Every command's output goes to a log file beside the test's other files (shown when a
step fails), and each step's wall time is kept for the closing summary.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"


class StepFailed(AssertionError):
    """A docker or compose command exited non-zero; the message ends with its output."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Compose:
    """One compose project (`-p NAME`) with its own env file, logs and step timings."""

    def __init__(self, project: str, env_file: Path, logs: Path) -> None:
        self.project, self.env_file, self.logs = project, env_file, logs
        self.timings: list[tuple[str, float]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def run(self, *argv: str, timeout: float = 900, check: bool = True) -> str:
        """`docker ARGV...`; its output (stdout and stderr) is returned and logged."""
        log = self.logs / f"{len(list(self.logs.iterdir())):02d}-{argv[0]}.log"
        with log.open("w") as fh:
            fh.write("$ docker " + " ".join(argv) + "\n")
            fh.flush()
            done = subprocess.run(
                ["docker", *argv],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                env={**os.environ, "DOCKER_CLI_HINTS": "false"},
            )
            fh.write(done.stdout)
        if check and done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-40:])
            raise StepFailed(f"docker {' '.join(argv)} exited {done.returncode}:\n{tail}")
        return done.stdout

    def compose(self, *argv: str, timeout: float = 900, check: bool = True) -> str:
        """`docker compose -p PROJECT --env-file ENV -f docker-compose.yml ARGV...`."""
        head = ["compose", "-p", self.project, "--env-file", str(self.env_file)]
        return self.run(*head, "-f", str(COMPOSE_FILE), *argv, timeout=timeout, check=check)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings.append((name, time.monotonic() - start))

    def containers(self) -> list[dict[str, Any]]:
        """`ps -a` of the project: every container, running or exited."""
        out = self.compose("ps", "-a", "--format", "json")
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return rows

    def project_leftovers(self) -> list[str]:
        """Containers and networks of this project that the engine still has."""
        label = f"label=com.docker.compose.project={self.project}"
        names = self.run("ps", "-a", "--filter", label, "--format", "{{.Names}}").split()
        names += self.run("network", "ls", "--filter", label, "--format", "{{.Name}}").split()
        return names

    def main_pid(self, service: str) -> int:
        """The host PID of the service's container's main process (the actlab command)."""
        container = self.compose("ps", "-q", service).strip()
        return int(self.run("inspect", "-f", "{{.State.Pid}}", container).strip())

    def restart_count(self, service: str) -> int:
        container = self.compose("ps", "-q", service).strip()
        return int(self.run("inspect", "-f", "{{.RestartCount}}", container).strip())

    def summary(self) -> str:
        width = max(len(name) for name, _ in self.timings)
        lines = [f"  {name.ljust(width)}  {seconds:7.1f} s" for name, seconds in self.timings]
        total = sum(seconds for _, seconds in self.timings)
        return "\n".join(
            ["compose e2e step times:", *lines, f"  {'total'.ljust(width)}  {total:7.1f} s"]
        )
