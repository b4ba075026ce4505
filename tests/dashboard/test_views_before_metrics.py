"""Every view with charts, opened before its runs wrote a single metric (issue 32, finding 7).

The module's one worker is kept busy by a long run while the runs under test are submitted,
so they wait queued with no metric while the page opens; cancelling the long run lets them
start, and the page must then draw their curves by itself: no reload, no script error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.dashboard.browser import Server, Watched
from tests.dashboard.test_views import LONG, api, small_spec
from tests.support import HANG_S, canonical_spec, wait_for_status

pytestmark = pytest.mark.integration

CANVAS = ".chart canvas"


@contextmanager
def worker_busy(client: httpx.Client) -> Iterator[None]:
    """The server's only worker is running a long experiment until the block ends."""
    blocker = client.post("/v1/experiments", json=canonical_spec(training=LONG)).json()
    wait_for_status(client, blocker["id"], {"running"})
    try:
        yield
    finally:
        client.post(f"/v1/experiments/{blocker['id']}/cancel").raise_for_status()


def assert_no_metrics(client: httpx.Client, ids: list[str]) -> None:
    """The precondition the finding is about: nothing to draw when the page opens."""
    for i in ids:
        assert client.get(f"/v1/experiments/{i}").json()["status"] == "queued"
        assert client.get(f"/v1/experiments/{i}/metrics").json()["series"] == {}


def open_empty(page: Watched, url: str) -> None:
    """Open `url`, let the view finish loading, and check it shows no curve yet."""
    p = page.page
    p.goto(url)
    p.wait_for_function("() => document.body.dataset.ready === '1'", timeout=HANG_S * 1000)
    assert p.locator(CANVAS).count() == 0
    assert not page.errors, page.errors


def wait_for_curves(page: Watched) -> None:
    """The chart appears once points exist, on the page as it is: no reload."""
    page.page.wait_for_selector(CANVAS, timeout=HANG_S * 1000)
    assert not page.errors, page.errors


def submit(client: httpx.Client, **overrides: Any) -> str:
    return str(client.post("/v1/experiments", json=small_spec(**overrides)).json()["id"])


def test_experiment_view_opened_before_any_metric_draws_its_curves(
    page: Watched, server: Server
) -> None:
    with api(server) as client:
        with worker_busy(client):
            exp = submit(client, name="empty-experiment")
            assert_no_metrics(client, [exp])
            open_empty(page, f"/#/experiments/{exp}")
        wait_for_curves(page)
        page.page.wait_for_selector('.chart[data-chart="loss"][data-points]')
        page.shot("empty-experiment-drawn")


def test_compare_view_opened_before_any_metric_draws_its_curves(
    page: Watched, server: Server
) -> None:
    with api(server) as client:
        with worker_busy(client):
            ids = [submit(client, name=f"empty-compare-{s}", seed=s) for s in (0, 1)]
            assert_no_metrics(client, ids)
            open_empty(page, f"/#/compare?ids={ids[0]},{ids[1]}")
            page.page.wait_for_selector('.chart[data-drawn="empty"]')
        wait_for_curves(page)
        # The picker offers the metrics that arrived after the page opened.
        page.page.wait_for_selector(
            'select[name="metric"] option[value="val/acc"]', state="attached"
        )
        page.shot("empty-compare-drawn")


def test_sweep_view_opened_before_any_metric_draws_its_curves(
    page: Watched, server: Server
) -> None:
    base = {k: v for k, v in small_spec().items() if k not in ("name", "seed")}
    body = {
        "name": "empty-sweep",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": [0],
        "metric": "val/acc",
    }
    with api(server) as client:
        with worker_busy(client):
            sweep = client.post("/v1/sweeps", json=body).raise_for_status().json()
            assert_no_metrics(client, [e["id"] for e in sweep["experiments"]])
            open_empty(page, f"/#/sweeps/{sweep['id']}")
            page.page.wait_for_selector('.chart[data-drawn="empty"]')
        wait_for_curves(page)
        page.shot("empty-sweep-drawn")


def test_a_forks_view_opened_before_its_run_wrote_a_point_draws_its_new_points(
    page: Watched, server: Server
) -> None:
    """A fork holds its parent's points up to its fork step from the start: the page opened
    while it waits shows those, and then the points of its own run as they arrive."""
    spec = small_spec(name="empty-fork-parent")
    with api(server) as client:
        parent = client.post("/v1/experiments", json=spec).json()
        assert wait_for_status(client, parent["id"], {"succeeded", "failed"})["status"] == (
            "succeeded"
        )
        k = client.get(f"/v1/experiments/{parent['id']}/checkpoints").json()["steps"][0]
        with worker_busy(client):
            fork = client.post(
                f"/v1/experiments/{parent['id']}/fork",
                json={"at_step": k, "overrides": {"optimizer.lr": 0.001}},
            ).json()
            assert client.get(f"/v1/experiments/{fork['id']}").json()["status"] == "queued"
            inherited = client.get(f"/v1/experiments/{fork['id']}/metrics").json()["series"]
            assert all(p["step"] <= k for points in inherited.values() for p in points)
            p = page.page
            p.goto(f"/#/experiments/{fork['id']}")
            p.wait_for_function("() => document.body.dataset.ready === '1'")
            p.wait_for_selector("#ancestors")
            chart = '.chart[data-chart="loss"]'
            p.wait_for_selector(f"{chart}[data-points]")
            before = int(p.get_attribute(chart, "data-points") or 0)
        count = f"Number(document.querySelector('{chart}').dataset.points)"
        p.wait_for_function(f"() => {count} > {before}", timeout=HANG_S * 1000)
        assert "(parent)" in p.inner_text(f"{chart} .legend")
        assert not page.errors, page.errors
        page.shot("empty-fork-drawn")
