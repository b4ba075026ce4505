"""`schemathesis run --checks all` against a live API: 0 failures, on this suite's database.

The API runs as `actlab api` in its own process, with API keys on, on the test's database
(SQLite or Postgres) and broker (embedded Redis or the machine's). No worker runs: the
fuzzer's experiments stay queued, so every response depends on the requests alone and a
run cannot flake on training timing. The examples are derandomized
(`--generation-deterministic`) and bounded (`--max-examples`), so CI replays one fixed set.
Per-operation exclusions, each for a rule JSON Schema cannot state, are in
schemathesis.toml beside this file and in docs/openapi.md.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from tests.support import ROOT, Process, settings_env

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Examples per operation and phase: 10 keep a run to a few minutes on a loaded 2-core box.
MAX_EXAMPLES = int(os.environ.get("ACTLAB_SCHEMATHESIS_EXAMPLES", "10"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api_key(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "actlab", "keys", "create", "fuzz"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _schemathesis(url: str, key: str, report: Path) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("schemathesis")
    args = [str(st), "--no-color", "--config-file", str(CONFIG), "run", f"{url}/openapi.json"]
    # No --checks on the command line: it would override the config's per-operation
    # exclusions, and schemathesis 4 enables every check by default (as `--checks all`).
    args += ["--max-examples", str(MAX_EXAMPLES)]
    args += ["--generation-deterministic"]
    args += ["--header", f"Authorization: Bearer {key}", "--request-timeout", "120"]
    args += ["--report", "junit", "--report-junit-path", str(report)]
    return subprocess.run(args, cwd=report.parent, capture_output=True, text=True, timeout=900)


@pytest.mark.timeout(1500)  # a loaded shared box; a quiet one takes a few minutes
def test_schemathesis_checks_all_find_no_failure(settings: Settings, tmp_path: Path) -> None:
    # Streams of queued experiments would stay open until a request timeout; 0.25 s ends them
    # (each is still a whole SSE response for the checks; 2 s cost 25 s of the run).
    update = {"auth_enabled": True, "stream_max_seconds": 0.25}
    env = settings_env(settings.model_copy(update=update))
    key = _api_key(env)
    port = _free_port()
    api = Process(
        [sys.executable, "-m", "actlab", "api", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "api.log",
    )
    try:
        api.wait_for("Application startup complete")
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/experiments").status_code == 401  # keys are on
        done = _schemathesis(url, key, tmp_path / "junit.xml")
    finally:
        api.stop()
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    print(summary)  # failures by check, shown with -s and in CI logs on failure
    assert done.returncode == 0, f"{done.stdout[-20000:]}\n{done.stderr[-4000:]}"
    assert re.search(r"Tested: (\d+)", summary), summary
    tested = int(re.search(r"Tested: (\d+)", summary).group(1))  # type: ignore[union-attr]
    assert tested >= 20, summary
    server_errors = [line for line in api.output().splitlines() if " 500 " in line]
    assert server_errors == [], server_errors[:5]
