"""Live streams against a real API process, a real worker and the real broker's pub/sub.

Every metric point reaches a client exactly once, across dropped connections resumed
with Last-Event-ID and across a worker SIGKILLed mid-run whose experiment resumes.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from tests.e2e import sse_client
from tests.support import HANG_S, canonical_spec, start_worker

pytestmark = pytest.mark.integration

FAST = {"lease_seconds": 4, "heartbeat_seconds": 1, "reaper_interval_seconds": 1}
SPEC = canonical_spec(training={"epochs": 6, "batch_size": 100, "checkpoint_interval_s": 0})


def _stored(api: httpx.Client, experiment_id: str) -> list[tuple[Any, ...]]:
    series = api.get(f"/v1/experiments/{experiment_id}/metrics").json()["series"]
    return sorted((None, name, p["step"]) for name, pts in series.items() for p in pts)


def _follow(api: httpx.Client, path: str, per_connection: int) -> list[sse_client.Read]:
    """Read a stream to its end, dropping the connection every `per_connection` messages."""
    reads: list[sse_client.Read] = []
    last_id = None
    while not (reads and reads[-1].ended):
        assert len(reads) < 500, "the stream never ended"
        reads.append(sse_client.read(api, path, last_id, max_messages=per_connection))
        last_id = reads[-1].last_id
    return reads


def test_reconnects_with_last_event_id_get_every_point_once(
    settings: Settings, tmp_path: Path
) -> None:
    worker = start_worker(settings, tmp_path / "w.log")
    try:
        with (
            sse_client.running_api(settings, tmp_path / "api.log") as url,
            httpx.Client(base_url=url, timeout=HANG_S) as api,
        ):
            exp = api.post("/v1/experiments", json=SPEC).json()
            reads = _follow(api, f"/v1/experiments/{exp['id']}/events", per_connection=3)
            got = sse_client.points([m for r in reads for m in r.messages])
            assert len(reads) > 3  # it really reconnected
            assert sorted(got) == _stored(api, exp["id"])  # every point, none twice
            assert reads[-1].messages[-1].data == {"status": "succeeded"}
    finally:
        worker.stop()


def test_ids_order_every_message(settings: Settings, tmp_path: Path) -> None:
    worker = start_worker(settings, tmp_path / "w.log")
    try:
        with (
            sse_client.running_api(settings, tmp_path / "api.log") as url,
            httpx.Client(base_url=url, timeout=HANG_S) as api,
        ):
            exp = api.post("/v1/experiments", json=canonical_spec(training={"epochs": 2})).json()
            read = sse_client.read(api, f"/v1/experiments/{exp['id']}/events")
    finally:
        worker.stop()
    assert read.ended
    kinds = Counter(m.event for m in read.messages)
    assert kinds["metrics"] and kinds["progress"] and kinds["status"] and kinds["end"] == 1
    ids = [tuple(int(x) for x in m.id.split("-")) for m in read.messages if m.id]
    assert len(ids) == len(read.messages)  # metrics, progress and end carry ids too
    assert ids == sorted(ids)


def test_a_killed_worker_loses_no_point_for_a_reconnecting_client(
    settings: Settings, tmp_path: Path
) -> None:
    fast = settings.model_copy(update=FAST)
    first = start_worker(fast, tmp_path / "w1.log", name="w1")
    second = None
    try:
        with (
            sse_client.running_api(fast, tmp_path / "api.log") as url,
            httpx.Client(base_url=url, timeout=HANG_S) as api,
        ):
            exp = api.post("/v1/experiments", json=SPEC).json()
            path = f"/v1/experiments/{exp['id']}/events"
            messages: list[sse_client.Message] = []
            last_id = None
            while True:
                read = sse_client.read(api, path, last_id, max_messages=2)
                messages += read.messages
                last_id = read.last_id
                if read.ended:
                    break
                epochs = {p[2] for p in sse_client.points(messages) if p[1] == "val/acc"}
                if second is None and len(epochs) >= 2:
                    first.stop(signal.SIGKILL)  # mid-run, mid-stream
                    second = start_worker(fast, tmp_path / "w2.log", name="w2")
            body = api.get(f"/v1/experiments/{exp['id']}").json()
            stored = _stored(api, exp["id"])
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second is not None, "the run ended before the worker could be killed"
    assert body["status"] == "succeeded" and body["attempts"] == 2, body
    got = sse_client.points(messages)
    assert len(got) == len(set(got))  # no duplicate
    assert sorted(got) == stored  # no gap


def test_a_sweep_streams_all_its_experiments_on_one_connection(
    settings: Settings, tmp_path: Path
) -> None:
    base = canonical_spec(dataset={"name": "moons"}, training={"epochs": 2})
    base = {k: v for k, v in base.items() if k not in ("name", "seed")}
    sweep = {"name": "s", "base_spec": base, "grid": {}, "seeds": [0, 1]}
    worker = start_worker(settings, tmp_path / "w.log")
    try:
        with (
            sse_client.running_api(settings, tmp_path / "api.log") as url,
            httpx.Client(base_url=url, timeout=HANG_S) as api,
        ):
            created = api.post("/v1/sweeps", json=sweep)
            assert created.status_code == 201, created.text
            sweep_id = created.json()["id"]
            reads = _follow(api, f"/v1/sweeps/{sweep_id}/events", per_connection=4)
            ids = [e["id"] for e in api.get(f"/v1/sweeps/{sweep_id}").json()["experiments"]]
            stored = sorted((i, name, step) for i in ids for _, name, step in _stored(api, i))
    finally:
        worker.stop()
    messages = [m for r in reads for m in r.messages]
    assert all("experiment_id" in m.data for m in messages if m.event != "metrics")
    assert {m.data["experiment_id"] for m in messages if m.event == "status"} == set(ids)
    assert sorted(sse_client.points(messages)) == stored
    assert messages[-1].event == "end" and messages[-1].data["counts"] == {"succeeded": 2}


def test_stream_caps_are_429s_naming_the_setting_and_streams_end_after_max_duration(
    settings: Settings, tmp_path: Path
) -> None:
    capped = settings.model_copy(update={"max_streams_total": 1, "stream_max_seconds": 2})
    with (
        sse_client.running_api(capped, tmp_path / "api.log") as url,
        httpx.Client(base_url=url, timeout=HANG_S) as api,
    ):
        exp = api.post("/v1/experiments", json=SPEC).json()  # no worker: stays queued
        path = f"/v1/experiments/{exp['id']}/events"
        headers = {"Accept": "text/event-stream"}
        with api.stream("GET", path, headers=headers) as first:
            assert first.status_code == 200
            second = api.get(path, headers=headers)
            assert second.status_code == 429
            assert "ACTLAB_MAX_STREAMS_TOTAL" in second.json()["detail"]
            read = list(sse_client.parse(first.iter_lines()))  # closes after 2 s
        assert read and all(m.event != "end" for m in read)
        assert api.get(path, headers=headers).status_code == 200  # the slot was given back
