"""The dashboard in Chromium: a 100-experiment sweep, a 100,000-point series, 10,000 rows.

Run by hand: python benchmarks/bench_dashboard.py [--experiments 100] [--points 2000]
    [--long 100000] [--rows 10000] [--repeats 3] [--chromium /usr/bin/chromium]

An `actlab api` on SQLite (and an embedded Redis that no worker reads) is filled directly
in its database; then Playwright drives Debian's Chromium and times, from navigation:

- the sweep page with per-seed lines: experiments x 4 curves x points stored, the chosen
  metric's curves (one per experiment plus each arm's mean and CI band) drawn;
- one experiment with a --long-point series, downsampled by the server; and the redraw
  after a drag-zoom on its chart;
- the experiments list over --rows experiments: the first page drawn, and how many rows
  the page fetched.

Each figure is printed beside the same view's API requests timed alone (httpx, same
loopback). Medians of --repeats; absolute numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.spec.experiment import CANONICAL_EXAMPLE
from core.store import metrics
from core.store.db import get_engine, session_scope
from core.store.models import Experiment, new_id
from service.embedded import EmbeddedRedis
from tests.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[1]
CURVES = ["train/loss", "val/loss", "val/acc", "lr"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@contextmanager
def api_server(tmp: Path, url: str, broker: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env |= {"ACTLAB_DATABASE_URL": url, "ACTLAB_BROKER_URL": broker, "PYTHONPATH": str(ROOT)}
    env |= {"ACTLAB_AUTH_ENABLED": "false", "ACTLAB_DATA_DIR": str(tmp)}
    env |= {"ACTLAB_MAX_QUEUED_PER_OWNER": "100000"}
    log = (tmp / "api.log").open("wb")
    args = [sys.executable, "-m", "actlab", "api", "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def insert_points(url: str, ids: list[str], names: list[str], points: int) -> None:
    """Through the store's writer (seqs, per-series counts, rollup), one experiment a
    transaction."""
    for e, exp_id in enumerate(ids):
        series = {
            name: [
                (s, s // 100, math.exp(-s / points * 3) + 0.05 * math.sin(s / 7 + e + n))
                for s in range(points)
            ]
            for n, name in enumerate(names)
        }
        with session_scope(url) as session:
            metrics.write_series(session, exp_id, series)


def make_sweep(client: httpx.Client, url: str, experiments: int, points: int) -> str:
    """A sweep of 4 arms (optimizer.lr) x experiments/4 seeds, all succeeded, with curves."""
    base = {k: v for k, v in CANONICAL_EXAMPLE.items() if k not in ("name", "seed")}
    body = {
        "name": "bench-sweep",
        "base_spec": base,
        "grid": {"optimizer.lr": [1e-3, 3e-3, 1e-2, 3e-2]},
    }
    body["seeds"] = list(range(experiments // 4))
    sweep = client.post("/v1/sweeps", json=body).raise_for_status().json()
    ids = [e["id"] for e in sweep["experiments"]]
    engine = get_engine(url)
    with engine.begin() as conn:
        summary = {"test/acc": 0.9, "val/acc": 0.9}
        conn.execute(
            update(Experiment)
            .where(Experiment.id.in_(ids))
            .values(status="succeeded", summary=summary)
        )
    insert_points(url, ids, CURVES, points)
    return str(sweep["id"])


def make_rows(url: str, rows: int) -> None:
    engine = get_engine(url)
    with engine.begin() as conn:
        batch = [
            {"id": new_id("exp"), "name": f"row-{i}", "activation": "relu", "tags": ["bench"]}
            | {"spec": CANONICAL_EXAMPLE, "status": "succeeded", "summary": {"test/acc": i / rows}}
            for i in range(rows)
        ]
        for start in range(0, rows, 5000):
            conn.execute(insert(Experiment), batch[start : start + 5000])


def browser_cases(
    args: argparse.Namespace, base: str, sweep_id: str, long_id: str
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=args.chromium, chromium_sandbox=False, args=["--no-sandbox"]
        )
        context = chromium.new_context(viewport={"width": 1300, "height": 1000})
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))

        # Per-seed lines: one curve per experiment and each arm's mean, drawn in one setData;
        # every curve has min(points, chart width) points.
        expected = args.experiments * min(args.points, 300)
        drawn = (
            "() => { const c = document.querySelector('.chart[data-drawn]');"
            f" return c && Number(c.dataset.points) >= {expected}; }}"
        )

        def sweep() -> None:
            page.goto("about:blank")
            page.goto(f"{base}/#/sweeps/{sweep_id}?metric=val/loss&seeds=1")
            page.wait_for_function(drawn, timeout=120_000)

        out["sweep"] = median_ms(sweep, args.repeats)

        def long() -> None:
            page.goto("about:blank")
            page.goto(f"{base}/#/experiments/{long_id}")
            page.wait_for_function(
                "() => document.querySelector('.chart[data-chart=\"loss\"][data-drawn]')",
                timeout=120_000,
            )

        out["long"] = median_ms(long, args.repeats)
        out["long_points"] = page.get_attribute('.chart[data-chart="loss"]', "data-points")

        def zoom() -> None:
            before = page.get_attribute('.chart[data-chart="loss"]', "data-drawn")
            box = page.locator('.chart[data-chart="loss"] .u-over').bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] * 0.3, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=4)
            page.mouse.up()
            chart = "document.querySelector('.chart[data-chart=\"loss\"]')"
            page.wait_for_function(f"() => {chart}.dataset.drawn !== '{before}'")
            page.mouse.dblclick(box["x"] + box["width"] / 2, y)  # back to the full range
            time.sleep(0.05)

        out["zoom"] = median_ms(zoom, args.repeats)

        def listing() -> None:
            page.goto("about:blank")
            requests.clear()
            page.goto(f"{base}/")
            page.wait_for_function(
                "() => document.querySelectorAll('table.experiments tbody tr').length >= 50"
            )

        out["list"] = median_ms(listing, args.repeats)
        out["list_requests"] = [u for u in requests if "/v1/experiments" in u]
        chromium.close()
    return out


def api_cases(args: argparse.Namespace, base: str, sweep_id: str, long_id: str) -> dict[str, float]:
    with httpx.Client(base_url=base, timeout=120) as c:

        def sweep() -> None:
            c.get(f"/v1/sweeps/{sweep_id}", params={"metric": "val/loss"}).raise_for_status()
            c.get(
                "/v1/metrics/series",
                params={
                    "sweep_id": sweep_id,
                    "name": "val/loss",
                    "max_points": 1288,
                    "format": "columnar",
                },
            ).raise_for_status()

        def long() -> None:
            c.get(f"/v1/experiments/{long_id}").raise_for_status()
            c.get(
                f"/v1/experiments/{long_id}/metrics",
                params={"max_points": 2000, "format": "columnar"},
            ).raise_for_status()

        def listing() -> None:
            c.get("/v1/experiments", params={"limit": 50}).raise_for_status()

        def sweep_all_curves() -> None:
            c.get(
                "/v1/metrics/series",
                params=[
                    ("sweep_id", sweep_id),
                    *(("name", n) for n in CURVES),
                    ("max_points", 1288),
                    ("format", "columnar"),
                ],
            ).raise_for_status()

        return {
            "sweep": median_ms(sweep, args.repeats),
            "sweep_all": median_ms(sweep_all_curves, args.repeats),
            "long": median_ms(long, args.repeats),
            "list": median_ms(listing, args.repeats),
        }


def report(args: argparse.Namespace, ui: dict[str, Any], api: dict[str, float]) -> None:
    print(f"\nmedian of {args.repeats}, ms (browser: navigation to drawn; API: requests alone)\n")
    rows = [
        (f"sweep {args.experiments} exp x 4 curves x {args.points} pts", ui["sweep"], api["sweep"]),
        ("  (its 4 curves of every experiment, API only)", None, api["sweep_all"]),
        (f"one {args.long:,}-point series ({ui['long_points']} pts sent)", ui["long"], api["long"]),
        ("  redraw after a drag-zoom", ui["zoom"], None),
        (f"experiments list over {args.rows:,} rows, first page", ui["list"], api["list"]),
    ]
    print(f"{'view':<56} {'browser':>9} {'API':>8}")
    for label, browser, alone in rows:
        b = f"{browser:.0f}" if browser is not None else ""
        a = f"{alone:.0f}" if alone is not None else ""
        print(f"{label:<56} {b:>9} {a:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--long", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="actlab-bench-ui-", dir="/tmp"))
    redis = EmbeddedRedis(tmp).start()
    try:
        url = scratch_database(None, tmp, prefix="bench")
        started = time.perf_counter()
        with (
            api_server(tmp, url, f"redis+socket://{redis.socket}") as base,
            httpx.Client(base_url=base, timeout=120) as client,
        ):
            sweep_id = make_sweep(client, url, args.experiments, args.points)
            long_id = client.post("/v1/experiments", json=CANONICAL_EXAMPLE).json()["id"]
            insert_points(url, [long_id], ["train/loss"], args.long)
            make_rows(url, args.rows)
            print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
            api = api_cases(args, base, sweep_id, long_id)
            ui = browser_cases(args, base, sweep_id, long_id)
        report(args, ui, api)
        print(f"\nlist requests of the last load: {ui['list_requests']}")
        return 0
    finally:
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
