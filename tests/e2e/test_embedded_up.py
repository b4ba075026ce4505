"""`actlab up` on embedded defaults: API, worker, Redis; data survives a restart."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.embedded import EmbeddedRedis
from tests.support import HANG_S, ROOT, Process, canonical_spec, wait_for_status

# Its own SQLite and embedded Redis, whatever the suite's configuration: the first pass only.
pytestmark = [pytest.mark.integration, pytest.mark.own_backend]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(data_dir: Path, port: int, log: Path) -> Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(
        ACTLAB_DATA_DIR=str(data_dir),
        ACTLAB_API_PORT=str(port),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )
    process = Process([sys.executable, "-m", "actlab", "up"], env, log)
    process.wait_for("Uvicorn running")
    return process


def test_up_trains_and_data_persists_across_restart(tmp_path: Path) -> None:
    # Short path: the embedded Redis's Unix socket lives in the data directory.
    data_dir = Path(f"/tmp/actlab-up-{os.getpid()}")
    port = _free_port()
    up = _up(data_dir, port, tmp_path / "up1.log")
    try:
        assert f"http://127.0.0.1:{port}" in up.output()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as api:
            assert api.get("/readyz").status_code == 200
            spec = canonical_spec(training={"epochs": 2, "batch_size": 100})
            exp = api.post("/v1/experiments", json=spec).json()
            done = wait_for_status(api, exp["id"], {"succeeded", "failed"})
            assert done["status"] == "succeeded", done
    finally:
        code = up.stop(signal.SIGINT)
    assert code in (0, 130), up.output()[-3000:]
    assert "actlab stopped" in up.output()

    up = _up(data_dir, port, tmp_path / "up2.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as api:
            again = api.get(f"/v1/experiments/{exp['id']}").json()
            assert again["status"] == "succeeded"
            assert again["summary"] == done["summary"]
            series = api.get(f"/v1/experiments/{exp['id']}/metrics").json()["series"]
            assert len(series["val/acc"]) == 2
    finally:
        up.stop(signal.SIGINT)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_ctrl_c_during_a_run_hands_it_back_and_the_next_up_resumes_it(tmp_path: Path) -> None:
    data_dir = Path(f"/tmp/actlab-up-c-{os.getpid()}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    up = _up(data_dir, port, tmp_path / "up1.log")
    try:
        with httpx.Client(base_url=url, timeout=HANG_S) as api:
            spec = canonical_spec(training={"epochs": 400, "checkpoint_interval_s": 0})
            exp = api.post("/v1/experiments", json=spec).json()
            wait_for_status(api, exp["id"], {"running"})
            while api.get(f"/v1/experiments/{exp['id']}").json()["progress"]["epoch"] < 2:
                time.sleep(0.2)
    finally:
        # The terminal's Ctrl-C reaches the whole foreground group, not only `actlab up`.
        code = up.interrupt_group()
    assert code in (0, 130), up.output()[-3000:]
    assert "actlab stopped" in up.output()
    assert not EmbeddedRedis(data_dir).running()  # nothing left behind

    up = _up(data_dir, port, tmp_path / "up2.log")
    try:
        with httpx.Client(base_url=url, timeout=HANG_S) as api:
            # Handed back through the broker before it stopped: picked up at once, resumed.
            deadline = time.monotonic() + HANG_S
            while "resumed from checkpoint" not in str(
                api.get(f"/v1/experiments/{exp['id']}/events").json()
            ):
                assert time.monotonic() < deadline, up.output()[-3000:]
                time.sleep(0.2)
            api.post(f"/v1/experiments/{exp['id']}/cancel")
            wait_for_status(api, exp["id"], {"cancelled"})
    finally:
        up.stop(signal.SIGINT)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_end_up_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    from core.store.db import session_scope
    from core.store.models import Experiment

    data_dir = Path(f"/tmp/actlab-up-{sig.name.lower()}-{os.getpid()}")
    port = _free_port()
    up = _up(data_dir, port, tmp_path / "up.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as api:
            spec = canonical_spec(training={"epochs": 400, "checkpoint_interval_s": 0})
            exp = api.post("/v1/experiments", json=spec).json()
            wait_for_status(api, exp["id"], {"running"})
            while api.get(f"/v1/experiments/{exp['id']}").json()["progress"]["epoch"] < 1:
                time.sleep(0.2)
            events = api.get(f"/v1/experiments/{exp['id']}/events").json()["events"]
        worker_pid = int(next(e["data"]["worker"] for e in events if e["data"]).split(":")[-1])
        up.proc.send_signal(sig)  # to `up` alone, as systemd, docker stop or kill do
        up.proc.wait(timeout=120)
        assert "actlab stopped" in up.output(), up.output()[-3000:]
        assert not EmbeddedRedis(data_dir).running()
        with pytest.raises(ProcessLookupError):
            os.kill(worker_pid, 0)  # the worker is gone, not orphaned
        with session_scope(f"sqlite:///{data_dir / 'actlab.db'}") as session:
            row = session.get(Experiment, exp["id"])
            assert row is not None and row.status == "queued"  # handed back, resumes later
    finally:
        up.stop(signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)
