"""The `actlab` CLI and client against a real `actlab up` (worker, Redis, database)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import actlab
from actlab.frames import COLUMNS
from tests.actlab.test_models_openapi import mismatches
from tests.support import (
    HANG_S,
    ROOT,
    Process,
    canonical_spec,
    configured_broker_url,
    configured_database_url,
)

pytestmark = [pytest.mark.integration, pytest.mark.backend]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`actlab up` on a free port, on the test configuration's database and broker if set."""
    data_dir = Path(f"/tmp/actlab-cli-{uuid.uuid4().hex[:8]}")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(ACTLAB_DATA_DIR=str(data_dir), ACTLAB_API_PORT=str(port), PYTHONPATH=str(ROOT))
    env.update(PYTHONUNBUFFERED="1", ACTLAB_QUEUE=f"cli-{uuid.uuid4().hex[:8]}")
    scratch = None
    if configured_database_url():
        from tests.support import drop_database, fresh_database

        scratch = fresh_database(tmp_path_factory.mktemp("db"))
        env["ACTLAB_DATABASE_URL"] = scratch
    broker = configured_broker_url()
    if broker:
        env["ACTLAB_BROKER_URL"] = broker
    log = tmp_path_factory.mktemp("up") / "up.log"
    up = Process([sys.executable, "-m", "actlab", "up"], env, log)
    try:
        up.wait_for("Uvicorn running")
        yield f"http://127.0.0.1:{port}"
    finally:
        up.stop(signal.SIGINT)
        shutil.rmtree(data_dir, ignore_errors=True)
        if scratch:
            drop_database(scratch)


def cli(server: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(ACTLAB_URL=server, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "actlab", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _spec_file(tmp_path: Path, **overrides: Any) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(canonical_spec(**overrides)))
    return path


def test_live_openapi_matches_the_client_models(server: str) -> None:
    assert mismatches(httpx.get(f"{server}/openapi.json").json()) == []


def test_submit_wait_then_ls_and_show(server: str, tmp_path: Path) -> None:
    spec = _spec_file(tmp_path)
    done = cli(server, "submit", str(spec), "--set", "training.epochs=2", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    exp_id = done.stdout.split()[0]
    assert exp_id.startswith("exp_") and "succeeded" in done.stdout and "val/acc" in done.stdout
    listed = cli(server, "ls", "--status", "succeeded", "--sort", "test/acc")
    assert listed.returncode == 0 and exp_id in listed.stdout, listed.stdout
    exp = actlab.Client(server).experiments.get(exp_id)
    assert exp.status == "succeeded" and exp.spec["training"]["epochs"] == 2
    bad = cli(server, "submit", str(spec), "--set", "training.epochs=0")
    assert bad.returncode == 1 and "training.epochs" in bad.stderr


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    return done.stderr.strip()


def test_an_unknown_metric_is_an_error_listing_the_names(server: str, tmp_path: Path) -> None:
    done = cli(server, "submit", str(_spec_file(tmp_path)), "--set", "training.epochs=1", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    exp_id = done.stdout.split()[0]
    out = str(tmp_path / "out.csv")
    err = _one_line_error(cli(server, "export", exp_id, "--metric", "val/accuracy", "-o", out))
    assert "422" in err and "'val/accuracy'" in err and "val/acc" in err, err
    err = _one_line_error(cli(server, "plot", exp_id, "--metric", "val/accuracy", "-o", out))
    assert "'val/accuracy'" in err and "train/loss" in err, err
    err = _one_line_error(cli(server, "ls", "--sort", "val/accuracy"))
    assert "--sort 'val/accuracy'" in err and "test/acc" in err, err
    with actlab.Client(server) as client, pytest.raises(actlab.InvalidRequest) as info:
        client.metrics(exp_id, names=["val/accuracy"])
    assert info.value.field == "name" and "val/acc" in info.value.problem["names"]
    two = cli(server, "submit", str(_spec_file(tmp_path)), "--set", "training.epochs=0",
              "--set", "optimizer.lr=-1")  # fmt: skip
    assert two.returncode == 1 and two.stderr.count("training.epochs") == 1, two.stderr


def test_fork_lists_kept_steps_forks_with_set_and_says_why_not(server: str, tmp_path: Path) -> None:
    spec = _spec_file(tmp_path)
    done = cli(server, "submit", str(spec), "--set", "training.epochs=2", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    parent = done.stdout.split()[0]
    listed = cli(server, "fork", parent)
    assert listed.returncode == 0, listed.stderr
    steps = listed.stdout.split("steps:")[1].replace(",", " ").split()
    assert len(steps) == 2  # one kept checkpoint per evaluation
    forked = cli(
        server,
        "fork", parent, "--at-step", steps[0],
        "--set", "noise_schedule.kind=constant", "--set", "noise_schedule.start=0",
        "--wait",
    )  # fmt: skip
    assert forked.returncode == 0, forked.stdout + forked.stderr
    assert f"forked from {parent} at step {steps[0]}" in forked.stdout
    assert f"fork of   {parent} at step {steps[0]}" in forked.stdout
    fork = actlab.Client(server).experiments.get(forked.stdout.split()[0])
    assert fork.parent_id == parent and fork.spec["noise_schedule"]["start"] == 0
    series = actlab.Client(server).experiments.series(fork.id, ["val/acc"])
    assert series.inherited_through_step == int(steps[0])
    bad = cli(server, "fork", parent, "--at-step", "3")
    assert bad.returncode == 1 and "at_step" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    bad = cli(server, "fork", parent, "--at-step", steps[0], "--set", "model.hidden=[10]")
    assert bad.returncode == 1 and "overrides.model.hidden" in bad.stderr


def test_sweep_to_its_table_then_plot_and_export(server: str, tmp_path: Path) -> None:
    base = canonical_spec(training={"epochs": 1})
    del base["name"], base["seed"]
    body = {
        "name": "cli-sweep",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": [0, 1],
        "baseline": {"activation.name": "relu"},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(body))
    made = cli(server, "sweep", "create", str(tmp_path / "sweep.yaml"), "--wait", timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    sweep_id = made.stdout.split()[0]
    # No metric asked: the default ranks on the validation split.
    assert "val/acc by arm" in made.stdout and "paired by seed" in made.stdout
    assert "activation.name=noisy_relu" in made.stdout
    shown = cli(server, "sweep", "show", sweep_id, "--metric", "val/acc")
    assert shown.returncode == 0 and "val/acc by arm" in shown.stdout, shown.stdout

    png = tmp_path / "curves.png"
    plotted = cli(
        server, "plot", "--sweep", sweep_id, "--metric", "val/acc", "--seeds", "-o", str(png)
    )
    assert plotted.returncode == 0, plotted.stderr
    _assert_has_content(png)
    panels = tmp_path / "dead.png"
    diag = cli(
        server, "plot", "--sweep", sweep_id, "--metric", "act/*/dead_fraction", "-o", str(panels)
    )
    assert diag.returncode == 0 and "(2 panels)" in diag.stdout, diag.stdout + diag.stderr

    import pandas as pd

    for name in ("out.csv", "out.parquet"):
        out = tmp_path / name
        done = cli(server, "export", "--sweep", sweep_id, "--metric", "val/acc", "-o", str(out))
        assert done.returncode == 0, done.stderr
        frame = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(out)
        assert list(frame.columns) == COLUMNS
        assert set(frame["arm"]) == {"activation.name=relu", "activation.name=noisy_relu"}
        assert set(frame["seed"]) == {0, 1} and set(frame["name"]) == {"val/acc"}
        assert len(frame) == 4  # 2 arms x 2 seeds x 1 epoch


def _assert_has_content(png: Path) -> None:
    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 20  # lines, a band, text: not a blank canvas


class DropFirstStream(httpx.BaseTransport):
    """Cuts the first event stream after its first status frame, as a lost connection would."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "/events" not in request.url.path:
            return response
        self.requests.append(request)
        if len(self.requests) > 1:
            return response
        return httpx.Response(response.status_code, headers=response.headers, stream=_cut(response))


class _cut(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __iter__(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.response.stream:  # type: ignore[union-attr]
            buffer += chunk
            if b"\n\n" in buffer and b"id: " in buffer:
                yield buffer[: buffer.index(b"\n\n") + 2]
                break
        self.response.close()
        raise httpx.ReadError("connection lost")


def test_watch_reconnects_with_last_event_id(server: str) -> None:
    transport = DropFirstStream()
    with actlab.Client(server, transport=transport) as client:
        exp = client.experiments.submit(canonical_spec(training={"epochs": 2}))
        events = list(client.experiments.watch(exp.id, backoff=0.1))
    assert len(transport.requests) >= 2
    first_id = events[0].id
    assert first_id is not None
    assert transport.requests[1].headers["last-event-id"] == first_id
    ids = [e.id for e in events if e.id is not None]
    # Ids are "E-M" (largest event id, largest metric-point id sent): they never decrease.
    assert ids == sorted(ids, key=lambda i: tuple(int(part) for part in i.split("-")))
    # Across the reconnect, no event row and no metric point arrived twice.
    rows = [e.data["id"] for e in events if e.kind == "status"]
    assert len(rows) == len(set(rows))
    points = [(p["name"], p["step"]) for e in events if e.kind == "metrics" for p in e.data]
    assert len(points) == len(set(points))
    assert [e.kind for e in events][-1] == "end" and events[-1].data["status"] == "succeeded"
    statuses = [e.data["status"] for e in events if e.kind == "status"]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    assert any(e.kind == "metrics" for e in events)


def test_an_optuna_search_from_a_yaml_file_shows_its_trials_and_cancels(
    server: str, tmp_path: Path
) -> None:
    base = canonical_spec(training={"epochs": 5000})  # far longer than the test: cancelled
    del base["name"], base["seed"]
    space = {"optimizer.lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": True}}
    body = {
        "name": "cli-optuna",
        "base_spec": base,
        "seeds": [0],
        "search": {"kind": "optuna", "sampler": "tpe", "n_trials": 5, "space": space},
    }
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(body))
    made = cli(server, "sweep", "create", str(tmp_path / "search.yaml"))
    assert made.returncode == 0, made.stdout + made.stderr
    sweep_id = made.stdout.split()[0]
    assert "5 experiments" in made.stdout
    shown = cli(server, "sweep", "show", sweep_id)
    assert "optuna tpe on val/acc (max): 1 of 5 trials asked, 1 at a time" in shown.stdout
    assert "trial=0,optimizer.lr=" in shown.stdout
    cancelled = cli(server, "sweep", "cancel", sweep_id)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    sweep = actlab.Client(server).sweeps.wait(sweep_id, timeout=HANG_S, poll=0.2)
    assert sweep.status == "cancelled" and sweep.trials_left == 0 and sweep.size == 1
    bad = cli(server, "sweep", "cancel", "swp_missing")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_watch_a_sweep_follows_every_experiment_on_the_sweep_stream(server: str) -> None:
    # Runs far longer than any wait for a cancel (a worker stops within a poll): with 50
    # epochs a busy box once let a claimed run finish before its cancel landed (succeeded).
    base = canonical_spec(training={"epochs": 10_000})
    del base["name"], base["seed"]
    body = {"name": "watched", "base_spec": base, "grid": {}, "seeds": [0, 1]}
    with actlab.Client(server) as client:
        sweep = client.sweeps.create(body)
        for exp in sweep.experiments:
            client.experiments.cancel(exp.id)
        events = list(client.sweeps.watch(sweep.id, poll=0.2))
        with pytest.raises(actlab.NotFound):
            list(client.sweeps.watch("swp_missing"))
    assert events[-1].kind == "end" and events[-1].data["counts"] == {"cancelled": 2}
    last = {e.experiment_id: e.data["status"] for e in events if e.kind == "status"}
    assert last == {exp.id: "cancelled" for exp in sweep.experiments}


def test_preview_prints_the_horizon_and_the_client_reads_the_curves(
    server: str, tmp_path: Path
) -> None:
    path = _spec_file(
        tmp_path, dataset={"name": "moons", "num_samples": 1000}, training={"epochs": 3}
    )
    out = cli(server, "preview", str(path), "--set", "noise_schedule.kind=linear", "--points", "3")
    assert out.returncode == 0, out.stderr
    assert "training examples 720, batch 100: 8 steps/epoch, 24 steps in 3 epochs" in out.stdout
    with actlab.Client(server) as client:
        p = client.preview(path, overrides={"noise_schedule.kind": "linear"}, max_points=3)
        points = p.series["noise/scale"]
        assert (p.steps_per_epoch, p.total_steps, len(points)) == (8, 24, 3)
        assert points[0].step == 1 and points[-1].step == 24
        assert all(q.value == pytest.approx(1 - (q.step - 1) / 24) for q in points)
        evals = client.experiments.preview(path, evaluations=True).series["lr"]
        assert [q.step for q in evals] == [8, 16, 24]
        with pytest.raises(actlab.InvalidRequest) as info:
            client.preview(path, overrides={"activation.params.sigma": -1})
        assert "activation.params.sigma" in str(info.value.errors)
    bad = cli(server, "preview", str(path), "--set", "training.epochs=0")
    assert bad.returncode == 1 and "training.epochs" in bad.stderr


def test_a_sweeps_report_in_markdown_latex_and_html_with_its_figures(
    server: str, tmp_path: Path
) -> None:
    base = canonical_spec(training={"epochs": 2})
    del base["name"], base["seed"]
    body = {
        "name": "cli-report",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"], "noise_schedule.kind": ["cosine"]},
        "seeds": [0, 1, 2],
        "labels": {"activation.name=noisy_relu,noise_schedule.kind=cosine": "NoisyReLU (ours)"},
    }
    with actlab.Client(server) as client:
        sweep = client.sweeps.create(body)
        client.sweeps.wait(sweep.id, timeout=HANG_S, poll=0.5)
    md = tmp_path / "report.md"
    made = cli(server, "report", sweep.id, "-o", str(md), "--delta", "0.01", "--margin", "0.05")
    assert made.returncode == 0, made.stdout + made.stderr
    text = md.read_text()
    for heading in ("# Sweep cli-report", "## Arms", "## Comparisons", "## How many seeds"):
        assert heading in text, text
    assert "| NoisyReLU (ours) | ReLU, cosine | paired t | 3 |" in text  # names, not paths
    assert "p (Holm)" in text and "TOST p" in text and "1 test in the family" in text
    # Ranked on val/acc (the default), with the same runs' test/acc reported beside it.
    assert "Metric: val/acc." in text and "## On the test split (test/acc)" in text
    assert "never used to choose among the arms" in text
    # The test split's tables add the interval over seeds x test examples (the runs kept
    # their per-example hits), for the arms and for the family's comparisons.
    test_split = text.split("## On the test split (test/acc)")[1].split("## Comparisons")[0]
    assert "95% CI, seeds x test examples" in test_split
    assert "The same family's comparisons on test/acc" in test_split
    assert "| NoisyReLU (ours) | ReLU, cosine | paired t | 3 |" in test_split
    for name in ("report-arms-val-acc.png", "report-curves-val-acc.png"):
        assert f"]({name})" in text and (tmp_path / name).stat().st_size > 10_000

    tex = tmp_path / "report.tex"
    done = cli(server, "report", sweep.id, "-o", str(tex))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "report-curves-val-acc.pdf").read_bytes()[:5] == b"%PDF-"
    _check_latex(tex)

    page = tmp_path / "report.html"
    assert cli(server, "report", sweep.id, "-o", str(page)).returncode == 0
    assert "<td>NoisyReLU (ours)</td>" in page.read_text()
    bad = cli(server, "report", sweep.id, "-o", str(tmp_path / "report.txt"))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def _check_latex(tex: Path) -> None:
    """Compile with Debian's pdflatex where it is installed (.ci/run installs it); else the
    environments and braces must at least balance."""
    engine = shutil.which("pdflatex")
    if engine is None:
        text = tex.read_text()
        assert text.count("{") - text.count(r"\{") == text.count("}") - text.count(r"\}")
        for env in ("document", "table", "tabular", "figure"):
            assert text.count(rf"\begin{{{env}") == text.count(rf"\end{{{env}")
        return
    run = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tex.parent, capture_output=True, text=True, timeout=HANG_S, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert tex.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
