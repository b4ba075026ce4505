"""The docker-compose.yml topology, run as local processes: migrate, the API, two workers.

Each process gets the command and the ACTLAB_* environment of its compose service; only
what points at Docker (database and broker URLs, volume paths, the port, plus a per-test
queue) is replaced by the local equivalent: the test's Postgres schema or SQLite file, the
session's Redis, temporary directories.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy import compose as c
from tests.scratch import drop_scratch, scratch_database
from tests.support import HANG_S, ROOT, Process, canonical_spec, configured_database_url

pytestmark = [pytest.mark.integration, pytest.mark.backend]

WORKERS = ["worker", "worker-gpu1"]  # a two-GPU box


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """An unmigrated database (the `migrate` service migrates it): a schema or a file."""
    url = scratch_database(configured_database_url(), tmp_path, migrate=False)
    yield url
    drop_scratch(url)


def _service_env(service: dict[str, object], local: dict[str, str]) -> dict[str, str]:
    compose_env = c.environment(service)  # type: ignore[arg-type]
    missing = sorted(set(local) - set(compose_env))
    assert not missing, f"compose does not set {missing}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(compose_env)
    env.update(local)
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    return env


def _actlab(argv: list[str]) -> list[str]:
    # The image's ENTRYPOINT is `actlab`, the console script of actlab.cli:main.
    return [sys.executable, "-m", "actlab", *argv]


def _api_key(env: dict[str, str]) -> str:
    """An admin key made with the documented `actlab keys create`."""
    out = subprocess.run(
        _actlab(["keys", "create", "deploy-e2e", "--admin"]),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    match = re.search(r"\bactlab_[0-9a-f]+_\S+", out.stdout)
    assert match, out.stdout
    return match.group(0)


def _submit(api: httpx.Client, dataset: dict[str, str]) -> list[str]:
    """A small sweep (2 activations x 2 seeds); returns its experiments' ids."""
    spec = canonical_spec(dataset=dataset, training={"epochs": 1, "batch_size": 100})
    base = {k: v for k, v in spec.items() if k not in ("name", "seed")}
    body = {
        "name": "deploy-e2e",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": [0, 1],
    }
    response = api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]
    listed = api.get("/v1/experiments", params={"sweep_id": sweep_id, "limit": 50})
    ids = [e["id"] for e in listed.json()["items"]]
    assert len(ids) == 4
    return ids


def test_compose_topology_runs_a_workload_on_two_workers(
    tmp_path: Path, empty_database: str, broker_url: str, shared_data_dir: Path
) -> None:
    services = c.compose()["services"]
    port = _free_port()
    local = {
        "ACTLAB_DATABASE_URL": empty_database,
        "ACTLAB_BROKER_URL": broker_url,
        "ACTLAB_DATA_DIR": str(shared_data_dir),
        "ACTLAB_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "ACTLAB_API_HOST": "127.0.0.1",
        "ACTLAB_API_PORT": str(port),
        "ACTLAB_QUEUE": f"actlab-deploy-{uuid.uuid4().hex[:10]}",
    }

    migrate = subprocess.run(
        _actlab(c.command(services["migrate"])),
        env=_service_env(services["migrate"], local),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    processes: list[Process] = []
    try:
        api_env = _service_env(services["api"], local)
        api_proc = Process(_actlab(c.command(services["api"])), api_env, tmp_path / "api.log")
        processes.append(api_proc)
        workers = {
            name: Process(
                _actlab(c.command(services[name])),
                _service_env(services[name], local),
                tmp_path / f"{name}.log",
            )
            for name in WORKERS
        }
        processes.extend(workers.values())
        api_proc.wait_for("Uvicorn running")
        for worker in workers.values():
            worker.wait_for(" ready.")

        key = _api_key(api_env)
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=HANG_S, headers=headers
        ) as api:
            assert api.get("/healthz").status_code == 200
            assert api.get("/readyz").json()["status"] == "ok"
            ids = _submit(api, {"name": "moons"})
            deadline = time.monotonic() + HANG_S
            pending = set(ids)
            done = {}
            while pending and time.monotonic() < deadline:
                for exp_id in sorted(pending):
                    body = api.get(f"/v1/experiments/{exp_id}").json()
                    if body["status"] in {"succeeded", "failed", "cancelled"}:
                        done[exp_id] = body
                        pending.discard(exp_id)
                time.sleep(0.3)
        assert not pending, f"not finished in 60 s: {sorted(pending)}"
        failed = {i: (b["status"], b["status_reason"]) for i, b in done.items()}
        assert all(s == ("succeeded", None) for s in failed.values()), failed

        ran = {
            name: {i for i in ids if f"experiment {i}: attempt" in worker.output()}
            for name, worker in workers.items()
        }
        assert set().union(*ran.values()) == set(ids), ran
        assert all(ran.values()), f"a worker ran nothing: {ran}"
    finally:
        for process in processes:
            process.stop()
