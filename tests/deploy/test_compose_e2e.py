"""docker-compose.yml on a real Docker engine: build, up, train, kill -9, down and up again.

Runs only with ACTLAB_TEST_COMPOSE_E2E=1 (`.ci/run` sets it, once, after installing Docker and
Compose), as root on a host with a running dockerd, debootstrap and pip:

    ACTLAB_TEST_COMPOSE_E2E=1 python -m pytest -s tests/deploy/test_compose_e2e.py

No image registry is needed: deploy/standins/build.sh builds stand-ins for the base images
from Debian packages (reused by tag on later runs), deploy/wheelhouse.sh downloads the
Python dependencies on the host, and the image builds offline from them. The stack runs
as the compose project `actlab-e2e`; the test talks to it only through the API's port,
published on 127.0.0.1, and `docker compose exec`. The tests run in file order and share
one stack; each step's time is printed at the end.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy import compose as c
from tests.deploy.docker import Compose, free_port
from tests.support import HANG_S, ROOT, canonical_spec, learnt

pytestmark = [
    pytest.mark.integration,
    # The first test carries the module fixture: on a cold machine the stand-in images
    # (debootstrap, the torch wheel) and the first image build take longer than the suite's
    # 600 s default.
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        os.environ.get("ACTLAB_TEST_COMPOSE_E2E") != "1",
        reason="needs a Docker engine: ACTLAB_TEST_COMPOSE_E2E=1 python -m pytest -s "
        "tests/deploy/test_compose_e2e.py (as root; .ci/run does this)",
    ),
]

PROJECT = "actlab-e2e"
# The canonical spec, checkpointing at every epoch (by default at most every 30 s), so that
# the kill below always finds a checkpoint; the same spec for the run it is compared with.
SPEC = canonical_spec(training={"checkpoint_interval_s": 0})
# A short lease, so that a killed worker's experiment is taken over within seconds.
FAST_LEASE = {
    "ACTLAB_LEASE_SECONDS": "15",
    "ACTLAB_HEARTBEAT_SECONDS": "3",
    "ACTLAB_REAPER_INTERVAL_SECONDS": "3",
}


@dataclass
class Stack:
    compose: Compose
    api: httpx.Client
    env: dict[str, str]
    state: dict[str, Any] = field(default_factory=dict)


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _env_file(tmp: Path, images: dict[str, str]) -> dict[str, str]:
    """.env.example as an operator edits it: real passwords, the stand-in images, the API
    published on a free loopback port; COMPOSE_PROFILES stays the example's (cpu)."""
    env = c.read_env_file()
    env.update(POSTGRES_PASSWORD=secrets.token_hex(12), REDIS_PASSWORD=secrets.token_hex(12))
    env.update(images, IMAGE_TAG="e2e", API_PUBLISH=f"127.0.0.1:{free_port()}", **FAST_LEASE)
    (tmp / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return env


def _script(compose: Compose, name: str, *argv: str) -> str:
    with compose.step(name):
        log = compose.logs / f"{name.replace(' ', '-')}.log"
        with log.open("w") as fh:
            done = subprocess.run(
                ["bash", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=fh, text=True
            )
        assert done.returncode == 0, f"{' '.join(argv)} failed:\n{log.read_text()[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("compose")
    compose = Compose(PROJECT, tmp / ".env", tmp / "logs")
    out = _script(compose, "stand-in images", "deploy/standins/build.sh")
    images = dict(line.split("=", 1) for line in out.split() if "=" in line)
    _script(compose, "wheelhouse", "deploy/wheelhouse.sh")
    env = _env_file(tmp, images)
    compose.compose("--profile", "*", "down", "-v", "--remove-orphans")  # an earlier run's
    try:
        with compose.step("docker compose build"):
            compose.compose("build")
        with compose.step("docker compose up -d --wait"):
            compose.compose("up", "-d", "--wait", timeout=600)
        with httpx.Client(base_url=f"http://{env['API_PUBLISH']}", timeout=HANG_S) as api:
            yield Stack(compose, api, env)
    except BaseException:
        print(compose.compose("logs", "--no-color", "--tail", "80", check=False))
        raise
    finally:
        compose.compose("--profile", "*", "down", "-v", "--remove-orphans", check=False)
        print("\n" + compose.summary())


def _authed(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.state['key']}"}


def _get(stack: Stack, path: str, **params: Any) -> Any:
    return stack.api.get(path, headers=_authed(stack), params=params).raise_for_status().json()


def _experiment(stack: Stack, exp_id: str) -> Any:
    """GET the experiment: a 201 means it is stored, so a 404 here is a failure."""
    return _get(stack, f"/v1/experiments/{exp_id}")


def _finished(stack: Stack, exp_id: str) -> Callable[[], Any]:
    def check() -> Any:
        exp = _experiment(stack, exp_id)
        return exp if exp and exp["status"] in ("succeeded", "failed", "cancelled") else None

    return check


def _snapshot(stack: Stack) -> dict[str, Any]:
    """Every experiment (status, summary, attempts) and every metric point of each."""
    listed = _get(stack, "/v1/experiments", limit=100)
    items = listed["items"] if isinstance(listed, dict) else listed
    out = {}
    for exp in items:
        out[exp["id"]] = {
            "status": exp["status"],
            "summary": exp["summary"],
            "attempts": exp["attempts"],
            "metrics": _get(stack, f"/v1/experiments/{exp['id']}/metrics")["series"],
        }
    return out


def test_up_runs_migrate_then_the_api_and_a_cpu_worker(stack: Stack) -> None:
    states = {row["Service"]: row for row in stack.compose.containers()}
    assert set(states) == {"postgres", "redis", "migrate", "api", "worker-cpu"}, states
    assert states["migrate"]["State"] == "exited" and states["migrate"]["ExitCode"] == 0
    assert "healthy" in states["api"]["Status"], states["api"]
    for name in ("postgres", "redis", "worker-cpu"):
        assert states[name]["State"] == "running", states[name]
    ready = stack.api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_key_through_compose_exec_and_an_experiment_succeeds(stack: Stack) -> None:
    with stack.compose.step("actlab keys create (compose exec)"):
        out = stack.compose.compose("exec", "-T", "api", "actlab", "keys", "create", "e2e")
    # The key's own alphabet (service/auth.py: a hex prefix, then token_urlsafe(32)): `compose
    # exec` relays stdout and stderr on one pipe here, and the stderr note ("# API key ...")
    # once landed right after the key without a newline, which `\S+` took as part of it.
    key = re.search(r"\bactlab_[0-9a-f]{8}_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", out)
    assert key is not None, out
    stack.state["key"] = key.group(0)
    assert stack.api.get("/v1/experiments").status_code == 401
    with stack.compose.step("experiment A (20 epochs, uninterrupted)"):
        created = stack.api.post("/v1/experiments", json=SPEC, headers=_authed(stack))
        assert created.status_code == 201, created.text
        exp = _wait("experiment A", _finished(stack, created.json()["id"]), timeout=600)
    assert exp["status"] == "succeeded", exp
    stack.state["a"] = exp["id"]
    print(f"\nexperiment A: test/acc {exp['summary'].get('test/acc')}")


def test_kill_9_of_the_worker_resumes_from_its_checkpoint(stack: Stack) -> None:
    created = stack.api.post("/v1/experiments", json=SPEC, headers=_authed(stack))
    exp_id = created.raise_for_status().json()["id"]

    def mid_run() -> Any:
        exp = _experiment(stack, exp_id)
        if exp is None:
            return None
        assert exp["status"] in ("queued", "running"), f"ended before the kill: {exp}"
        return exp if exp["status"] == "running" and exp["progress"]["epoch"] >= 3 else None

    with stack.compose.step("experiment B until epoch 3"):
        before = _wait("experiment B at epoch 3", mid_run, timeout=600, every=0.2)
    restarts = stack.compose.restart_count("worker-cpu")
    os.kill(stack.compose.main_pid("worker-cpu"), signal.SIGKILL)
    with stack.compose.step("experiment B: kill -9, restart, lease expiry, resume"):
        _wait(
            "the worker container's restart",
            lambda: stack.compose.restart_count("worker-cpu") > restarts,
            timeout=120,
        )
        exp = _wait("experiment B after the kill", _finished(stack, exp_id), timeout=600)
    assert exp["status"] == "succeeded", exp
    assert exp["attempts"] == 2, exp
    events = json.dumps(_get(stack, f"/v1/experiments/{exp_id}/events", limit=1000))
    resumed = [int(s) for s in re.findall(r"resumed from checkpoint at step (\d+)", events)]
    # (the API's progress lags the worker's by up to a heartbeat, so it bounds nothing)
    assert len(resumed) == 1 and 0 < resumed[0] < exp["progress"]["total"], events
    a = learnt(_get(stack, f"/v1/experiments/{stack.state['a']}/metrics")["series"])
    b = learnt(_get(stack, f"/v1/experiments/{exp_id}/metrics")["series"])
    assert b.keys() == a.keys()
    steps = {name: [p["step"] for p in points] for name, points in b.items()}
    assert steps == {name: [p["step"] for p in points] for name, points in a.items()}
    assert b == a, "the resumed run's curve differs from the uninterrupted one's"
    stack.state["b"] = exp_id
    print(
        f"\nexperiment B: killed at epoch {before['progress']['epoch']} (API progress: step "
        f"{before['progress']['step']}), resumed from checkpoint at step {resumed[0]} of "
        f"{exp['progress']['total']}; "
        f"{sum(len(p) for p in b.values())} metric points in {len(b)} series, all equal to A's"
    )


def test_down_then_up_keeps_every_experiment_and_metric(stack: Stack) -> None:
    before = _snapshot(stack)
    assert {stack.state["a"], stack.state["b"]} <= set(before)
    with stack.compose.step("backup: pg_dump through compose exec"):
        dump = 'pg_dump -U "$POSTGRES_USER" -Fc "$POSTGRES_DB" > /tmp/actlab.dump'
        listing = "head -c 5 /tmp/actlab.dump; echo; pg_restore -l /tmp/actlab.dump"
        out = stack.compose.compose("exec", "-T", "postgres", "sh", "-c", f"{dump} && {listing}")
    assert out.startswith("PGDMP") and "TABLE DATA public metrics" in out, out
    with stack.compose.step("docker compose down"):
        stack.compose.compose("down")
    assert stack.compose.project_leftovers() == [], "down left containers or networks"
    with stack.compose.step("docker compose up -d --wait (again)"):
        stack.compose.compose("up", "-d", "--wait", timeout=600)
    assert _snapshot(stack) == before


def test_down_leaves_nothing_running(stack: Stack) -> None:
    stack.compose.compose("down")
    assert stack.compose.project_leftovers() == []
    volumes = stack.compose.run("volume", "ls", "--format", "{{.Name}}").split()
    assert f"{PROJECT}_postgres" in volumes, "plain down keeps the data volumes"


def test_gpu_profiles_configure_nvidia_workers_and_cpu_needs_none(
    stack: Stack, tmp_path: Path
) -> None:
    """The GPU path as the real Compose resolves it (no NVIDIA runtime here to run it)."""

    def config(profiles: str) -> dict[str, Any]:
        env_file = tmp_path / f"{profiles}.env"
        text = stack.compose.env_file.read_text()
        env_file.write_text(
            re.sub(r"(?m)^COMPOSE_PROFILES=.*$", f"COMPOSE_PROFILES={profiles}", text)
        )
        other = Compose(PROJECT, env_file, stack.compose.logs)
        return json.loads(other.compose("config", "--format", "json"))["services"]  # type: ignore[no-any-return]

    def devices(service: dict[str, Any]) -> list[dict[str, Any]]:
        return (
            service.get("deploy", {})
            .get("resources", {})
            .get("reservations", {})
            .get("devices", [])
        )

    cpu = config("cpu")
    assert "worker-cpu" in cpu and not any(devices(s) for s in cpu.values())
    gpu = config("gpu,multi-gpu")
    assert "worker-cpu" not in gpu
    assert [d["driver"] for d in devices(gpu["worker"])] == ["nvidia"]
    assert devices(gpu["worker"])[0]["count"] == 1
    assert devices(gpu["worker-gpu1"])[0]["device_ids"] == ["1"]
