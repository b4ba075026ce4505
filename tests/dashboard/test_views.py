"""The dashboard in Chromium against a real `actlab up` with a real worker.

Page-side checks are arrow functions: the page's CSP forbids eval, which Playwright would
use for a bare expression string.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.dashboard.browser import HOSTILE_NAME, HOSTILE_TAG, Server, Watched
from tests.support import HANG_S, canonical_spec, series, wait_for_status

pytestmark = pytest.mark.integration

# Every use cancels it: long enough that only a hang, never a busy box, lets it end first (at
# 400 epochs a stress-loaded box finished it while the browser was still opening the page).
LONG = {"epochs": 10_000, "batch_size": 100, "checkpoint_interval_s": 0}


def small_spec(**overrides: Any) -> dict[str, Any]:
    """A run of a few seconds: two moons, a small MLP."""
    spec = canonical_spec(
        dataset={"name": "moons", "num_samples": 400},
        model={"arch": "mlp", "hidden": [16]},
        training={"epochs": 3, "batch_size": 50},
    )
    return {**spec, **overrides}


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=HANG_S)


@pytest.fixture(autouse=True)
def nothing_left_running(server: Server) -> Iterator[None]:
    """The module's tests share one `actlab up` with one worker: a run that a failed test left
    going (a LONG one trains for hours) would hold that worker and leave every later test's
    runs queued until each hit the hang limit. So each test ends by cancelling what it left."""
    yield
    with api(server) as client:
        for status in ("running", "queued"):
            listed = client.get("/v1/experiments", params={"status": status, "limit": 500})
            for exp in listed.json()["items"]:
                client.post(f"/v1/experiments/{exp['id']}/cancel")


def points(page: Watched, chart: str) -> int:
    value = page.page.get_attribute(f'.chart[data-chart="{chart}"]', "data-points")
    return int(value or 0)


def test_list_shows_it_its_curve_grows_and_cancel_cancels_it(page: Watched, server: Server) -> None:
    with api(server) as client:
        exp = client.post("/v1/experiments", json=canonical_spec(training=LONG)).json()
        wait_for_status(client, exp["id"], {"running"})
        p = page.page
        p.goto("/")
        row = p.locator(f'tr[data-id="{exp["id"]}"]')
        row.wait_for()
        assert exp["name"] in row.inner_text()
        page.shot("list")
        row.get_by_role("link").click()
        p.wait_for_selector('.chart[data-chart="loss"][data-points]')
        before = points(page, "loss")
        # Points arrive over the SSE stream: no reload in between.
        count = "Number(document.querySelector('.chart[data-chart=\"loss\"]').dataset.points)"
        p.wait_for_function(f"() => {count} > {before}", timeout=HANG_S * 1000)
        assert points(page, "loss") > before
        page.shot("experiment-running")
        p.click("#cancel")
        p.wait_for_selector('#experiment-header [data-status="cancelled"]', timeout=HANG_S * 1000)
        page.shot("experiment-cancelled")
        assert client.get(f"/v1/experiments/{exp['id']}").json()["status"] == "cancelled"
        assert p.is_enabled("#retry")


def _number(text: str | None) -> float | None:
    return None if text in (None, "") else float(text)  # type: ignore[arg-type]


def test_sweep_page_table_equals_the_api(page: Watched, server: Server) -> None:
    base = {k: v for k, v in small_spec().items() if k not in ("name", "seed")}
    sweep = {
        "name": "relu-vs-noisy",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": [0, 1, 2],
        "baseline": {"activation.name": "relu"},
        "metric": "test/acc",
    }
    with api(server) as client:
        created = client.post("/v1/sweeps", json=sweep).raise_for_status().json()
        for e in created["experiments"]:
            wait_for_status(client, e["id"], {"succeeded", "failed"})
        truth = client.get(f"/v1/sweeps/{created['id']}").json()
    p = page.page
    p.goto(f"/#/sweeps/{created['id']}")
    p.wait_for_selector(".chart[data-points]")
    for arm in truth["aggregate"]:
        row = p.locator(f'table.aggregate tr[data-label="{arm["label"]}"]')
        shown = [
            _number(v)
            for v in row.locator("[data-value]").evaluate_all(
                "els => els.map(e => e.dataset.value)"
            )
        ]
        keys = [
            "n",
            "mean",
            "std",
            "ci_low",
            "ci_high",
            "n_pending",
            "n_failed",
            "n_cancelled",
            "n_missing",
        ]
        assert shown == [arm[k] for k in keys], arm["label"]
    for comparison in truth["comparisons"]:
        row = p.locator(f'table.comparisons tr[data-label="{comparison["label"]}"]')
        shown = [
            _number(v)
            for v in row.locator("[data-value]").evaluate_all(
                "els => els.map(e => e.dataset.value)"
            )
        ]
        keys = ["n_pairs", "mean_diff", "ci_low", "ci_high", "p_value", "p_holm"]
        assert shown == [comparison[k] for k in keys]
    assert truth["comparisons"][0]["p_value"] is not None
    page.shot("sweep")
    p.check('input[name="per-seed"]')
    p.wait_for_function("() => document.querySelectorAll('.legend .key').length >= 8")
    page.shot("sweep-per-seed")


def test_hostile_names_and_tags_render_as_text_in_every_view(page: Watched, server: Server) -> None:
    with api(server) as client:
        ids = [
            client.post(
                "/v1/experiments", json=small_spec(name=HOSTILE_NAME, seed=s, tags=[HOSTILE_TAG])
            ).json()["id"]
            for s in (0, 1)
        ]
        base = {k: v for k, v in small_spec().items() if k not in ("name", "seed")}
        sweep = client.post(
            "/v1/sweeps",
            json={"name": HOSTILE_TAG, "base_spec": base, "seeds": [0], "tags": [HOSTILE_NAME]},
        ).json()
        for i in ids:
            wait_for_status(client, i, {"succeeded", "failed"})
    p = page.page
    views = {
        "hostile-list": "/",
        "hostile-experiment": f"/#/experiments/{ids[0]}",
        "hostile-sweep": f"/#/sweeps/{sweep['id']}",
        "hostile-sweeps": "/#/sweeps",
        "hostile-compare": f"/#/compare?ids={ids[0]},{ids[1]}",
    }
    for name, url in views.items():
        p.goto(url)
        p.wait_for_function("() => document.body.dataset.ready === '1'")
        text = p.inner_text("main")
        assert HOSTILE_NAME in text or HOSTILE_TAG in text, name
        assert p.evaluate("window.__xss") is None, name
        assert p.locator("main img, main script").count() == 0, name
        page.shot(name)
    assert not page.dialogs


def test_docs_and_redoc_render_offline(page: Watched, server: Server) -> None:
    p = page.page
    p.goto("/docs")
    p.wait_for_selector(".swagger-ui .information-container .title", timeout=HANG_S * 1000)
    assert "actlab" in p.inner_text(".swagger-ui .information-container .title")
    page.shot("docs")
    p.goto("/redoc")
    p.wait_for_selector("h1", timeout=HANG_S * 1000)
    assert "actlab" in p.inner_text("h1")
    # ReDoc draws its sidebar footer last; its logo (ours, same-origin) is then loaded.
    p.wait_for_function(
        "() => { const logo = document.querySelector('img[src$=\"logo-mini.svg\"]');"
        " return logo !== null && logo.complete && logo.naturalWidth > 0; }",
        timeout=HANG_S * 1000,
    )
    page.shot("redoc")
    assert page.requests, "the request log is empty: nothing was recorded"
    assert not page.off_origin()


@pytest.mark.parametrize("how", ["aborted", "503"])
def test_a_script_that_cannot_load_is_named_on_the_page(
    page: Watched, server: Server, how: str
) -> None:
    """A module that fails to load raises no script error: without boot.js the page said
    "Loading…" for ever."""
    p = page.page

    def fail(route: Any) -> None:
        if how == "aborted":
            route.abort("connectionreset")
        else:
            route.fulfill(status=503, content_type="text/plain", body="restarting")

    p.route("**/static/js/views/sweep.js", fail)
    p.goto("/#/sweeps")
    # main.js's error (its graph failed) may come first; the preload's names the file.
    expect(p.locator("#load-failed")).to_have_text(
        "The dashboard could not load /static/js/views/sweep.js; reload the page to try again.",
        timeout=HANG_S * 1000,
    )
    assert p.locator("#app > *").count() == 1  # "Loading…" is gone
    p.unroute("**/static/js/views/sweep.js")
    p.reload()
    p.wait_for_selector('body[data-ready="1"] #sweeps', timeout=HANG_S * 1000)
    assert p.locator("#load-failed").count() == 0


def test_a_view_that_fails_says_why_above_what_it_drew(page: Watched, server: Server) -> None:
    base = small_spec()
    del base["seed"]
    body = {"name": "no-curves", "base_spec": base, "seeds": [0]}
    with api(server) as client:
        sweep = client.post("/v1/sweeps", json=body).json()
    p = page.page
    p.route("**/v1/metrics/series*", lambda route: route.abort("connectionreset"))
    p.goto(f"/#/sweeps/{sweep['id']}")
    p.wait_for_selector("#app > p.error", timeout=HANG_S * 1000)
    assert p.locator("#app > p.error").count() == 1
    assert p.inner_text("#app > p.error") == "Failed to fetch"
    assert p.inner_text("#sweep-name") == "no-curves"  # the tables drawn before it stay


# Curves that left uPlot's own tick loop (numAxisSplits) adding a step lost in float rounding
# until V8 gave up ("RangeError: Invalid array length", a dead page): a series flat up to
# float32 noise (a clipped gradient norm, a constant rate), flat up to float64 noise, a lone
# point, and steps far from zero. (xs, ys) each.
DEGENERATE_CURVES = [
    ([0, 1, 2, 3], [0.9999997615814209, 1.000000238418579, 0.9999997615814209, 1.0]),
    ([0, 1, 2, 3, 4], [2, 1.999999999999999, 2.000000000000001, 2, 2]),
    ([0], [5]),
    ([7], [0.1]),
    ([0, 1], [1e14, 1e14]),
    ([1e15, 1e15 + 1], [0.5, 0.25]),
    ([0, 1, 2], [1e-30, 1e-30, 1e-30]),
]


def test_a_chart_of_a_flat_or_lone_curve_draws(page: Watched, server: Server) -> None:
    p = page.page
    p.goto("/")
    p.wait_for_selector('body[data-ready="1"]', timeout=HANG_S * 1000)
    drawn = p.evaluate(
        """async (cases) => {
            const { Chart } = await import("/static/js/chart.js");
            const out = [];
            for (const [xs, ys] of cases) {
                const chart = new Chart("degenerate");
                document.body.append(chart.el);
                chart.curves = [{ label: "y", xs, ys }];
                chart.draw();  // not set(): it would draw at an animation frame of its own
                await new Promise((done) => requestAnimationFrame(() => done()));  // uPlot draws
                out.push(chart.el.dataset.drawn ?? null);
                chart.plot.destroy();
                chart.el.remove();
            }
            return out;
        }""",
        DEGENERATE_CURVES,
    )
    assert all(d and d.isdigit() for d in drawn), drawn


def test_every_response_carries_the_policy(server: Server) -> None:
    with api(server) as client:
        for path in ("/", "/docs", "/redoc", "/static/js/main.js", "/v1/experiments"):
            policy = client.get(path).headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'self'" in policy, path


def test_noise_scale_is_drawn_against_the_spec_preview(page: Watched, server: Server) -> None:
    """The planned curve is the server's spec preview: one point per step of the run."""
    spec = small_spec(noise_schedule={"kind": "linear", "start": 1.0, "end": 0.0, "warmup": 2})
    with api(server) as client:
        planned = client.post("/v1/experiments/preview", json=spec).json()
        exp = client.post("/v1/experiments", json=spec).json()
        done = wait_for_status(client, exp["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done
        measured = client.get(
            f"/v1/experiments/{exp['id']}/metrics", params={"name": "noise/scale"}
        ).json()["series"]["noise/scale"]
    total = planned["total_steps"]  # 288 training examples in batches of 50: 6 x 3 = 18
    assert total == 18 and len(planned["series"]["noise/scale"]) == total
    p = page.page
    p.goto(f"/#/experiments/{exp['id']}")
    chart = '.chart[data-chart="noise/scale"]'
    p.wait_for_function(
        f"() => document.querySelector('{chart}')?.dataset.points === '{total + len(measured)}'"
    )
    assert "schedule (preview)" in p.inner_text(f"{chart} .legend")
    page.shot("experiment-noise-preview")


def test_a_forks_page_shows_its_lineage_and_its_curves_over_its_parents(
    page: Watched, server: Server
) -> None:
    spec = small_spec(noise_schedule={"kind": "constant", "start": 1.0})
    with api(server) as client:
        parent = client.post("/v1/experiments", json=spec).json()
        assert wait_for_status(client, parent["id"], {"succeeded", "failed"})["status"] == (
            "succeeded"
        )
        k = client.get(f"/v1/experiments/{parent['id']}/checkpoints").json()["steps"][0]
        quiet = {"noise_schedule.start": 0.0}
        fork = client.post(
            f"/v1/experiments/{parent['id']}/fork", json={"at_step": k, "overrides": quiet}
        ).json()
        assert wait_for_status(client, fork["id"], {"succeeded", "failed"})["status"] == "succeeded"
    p = page.page
    p.goto(f"/#/experiments/{fork['id']}")
    p.wait_for_selector("#ancestors")
    lineage = p.inner_text("#ancestors")
    assert parent["name"] in lineage and f"forked at step {k} (noise_schedule.start=0)" in lineage
    chart = '.chart[data-chart="loss"]'
    p.wait_for_selector(f"{chart}[data-points]")
    legend = p.inner_text(f"{chart} .legend")
    assert "train/loss (parent)" in legend and "val/loss (parent)" in legend
    page.shot("experiment-fork")
    p.click(f"#ancestors a[href='#/experiments/{parent['id']}']")
    p.wait_for_selector(f"#forks li[data-fork='{fork['id']}']")
    assert f"from step {k}: noise_schedule.start=0" in p.inner_text("#forks")
    page.shot("experiment-forked")


def test_a_search_sweeps_page_shows_its_rungs_as_the_api_does(
    page: Watched, server: Server
) -> None:
    base = small_spec()
    del base["name"], base["seed"]
    body = {
        "name": "halving",
        "base_spec": base,
        "grid": {"optimizer.lr": [0.03, 0.01, 0.0001]},
        "seeds": [0],
        "search": {"kind": "successive_halving", "metric": "val/acc"},
    }
    with api(server) as client:
        sweep = client.post("/v1/sweeps", json=body).json()
        for e in sweep["experiments"]:
            wait_for_status(client, e["id"], {"succeeded", "pruned", "failed"})
        view = client.get(f"/v1/sweeps/{sweep['id']}").json()
        metric = view["metric"]  # none asked: val/acc, the chart's
        last = {e["label"]: series(client, e["id"])[metric][-1] for e in view["experiments"]}
    rungs = view["rungs"]
    p = page.page
    p.goto(f"/#/sweeps/{sweep['id']}")
    p.wait_for_selector("table.rungs tbody tr")
    rows = p.locator("table.rungs tbody tr")
    assert rows.count() == len(rungs) == 2
    first = rows.nth(0).inner_text().split()
    assert first == ["0", "1", "6", "3", "0", "1", "2"]  # 1 epoch of 6 steps: 3 reached, 1 on
    assert "n_pruned" in p.inner_text("table.aggregate thead")
    # The curves: the winner marked where it was promoted, the pruned where they stopped,
    # each pruned curve ending at its mark (its last point is the rung's step).
    chart = '.chart[data-chart="curves"]'
    p.wait_for_selector(f"{chart}[data-points]")
    marks = json.loads(p.get_attribute(chart, "data-marks") or "[]")
    seen = {(m["label"].split(" (mean")[0], m["kind"], m["x"]) for m in marks}
    status = {e["label"]: e["status"] for e in view["experiments"]}
    kind = {"succeeded": "promoted", "pruned": "pruned"}
    assert seen == {(arm, kind[s], 6) for arm, s in status.items()}
    for m in marks:
        arm = m["label"].split(" (mean")[0]
        if status[arm] == "pruned":
            assert last[arm]["step"] == 6 and m["y"] == last[arm]["value"]
        else:
            assert last[arm]["step"] == 18
    caption = p.inner_text("#curves-caption")
    assert "dashed lines are the rungs (step 6)" in caption
    assert "promoted at the rung" in caption and "pruned at the rung" in caption
    page.shot("sweep-search")


def test_an_optuna_sweeps_page_says_how_many_trials_were_asked_and_lists_each(
    page: Watched, server: Server
) -> None:
    base = small_spec()
    del base["name"], base["seed"]
    space = {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.03, "log": True}}
    search = {"kind": "optuna", "sampler": "tpe", "n_trials": 3, "space": space}
    body = {"name": "tpe", "base_spec": base, "seeds": [0], "search": search}
    with api(server) as client:
        sweep = client.post("/v1/sweeps", json=body).json()
        deadline = time.monotonic() + HANG_S
        while client.get(f"/v1/sweeps/{sweep['id']}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the search never ended"
            time.sleep(0.2)
    p = page.page
    p.goto(f"/#/sweeps/{sweep['id']}")
    p.wait_for_selector("p.trials")
    assert p.inner_text("p.trials") == (
        "Optuna tpe on val/acc (max): 3 of 3 trials asked, 1 at a time"
    )
    labels = p.locator("table.aggregate tbody tr").all_inner_texts()
    assert [row.split()[0].split(",")[0] for row in labels] == ["trial=0", "trial=1", "trial=2"]
    assert p.locator("table.rungs").count() == 0  # no halving block: no rungs
    page.shot("sweep-optuna")


def test_queue_page_shows_the_apis_order_reasons_and_starts(page: Watched, server: Server) -> None:
    with api(server) as client:
        running = client.post("/v1/experiments", json=canonical_spec(training=LONG)).json()
        wait_for_status(client, running["id"], {"running"})
        queued = [
            client.post("/v1/experiments", json=small_spec(name=f"waiting-{i}")).json()
            for i in range(2)
        ]
        try:
            p = page.page
            p.goto("/#/queue")
            p.locator(f'tr[data-id="{queued[-1]["id"]}"]').wait_for()
            view = client.get("/v1/queue").json()
            rows = p.locator("table.queue tbody tr")
            assert rows.count() == len(view["items"]) == 3
            ids = [rows.nth(i).get_attribute("data-id") for i in range(rows.count())]
            assert ids == [item["id"] for item in view["items"]]
            first = rows.nth(1).inner_text()
            assert "#1" in first and "next; all workers busy" in first
            assert "starts in" in first or "no estimate yet" in first
            assert "#2" in rows.nth(2).inner_text()
            assert "1 of 1 workers busy" in p.inner_text("#queue-summary")
            page.shot("queue")
        finally:
            for exp in (running, *queued):
                client.post(f"/v1/experiments/{exp['id']}/cancel")
