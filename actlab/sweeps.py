"""`client.sweeps`: create, get, cancel, list, wait, watch, and the aggregate tables."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from actlab import errors, specs
from actlab.experiments import follow
from actlab.models import TERMINAL, Power, StreamEvent, Sweep, SweepList, SweepSummary
from actlab.resource import Resource

if TYPE_CHECKING:
    import pandas as pd


class Sweeps(Resource):
    def create(
        self,
        sweep: specs.SpecLike,
        *,
        overrides: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Sweep:
        """Create a sweep (dict or YAML/JSON path); `overrides` set dotted paths in it."""
        return Sweep.model_validate(self._submit("/v1/sweeps", sweep, overrides, idempotency_key))

    def get(
        self,
        sweep_id: str,
        *,
        metric: str | None = None,
        baseline: str | None = None,
        family: str | None = None,
        margin: float | None = None,
        bootstrap: bool = False,
    ) -> Sweep:
        """The sweep, its experiments, the aggregate of `metric` and the comparisons of the
        `family` (`baseline`: each arm with it; `all_pairs`), adjusted over it; `margin`
        adds equivalence tests (TOST), `bootstrap` BCa intervals."""
        body = self._c.get(
            f"/v1/sweeps/{sweep_id}", metric=metric, baseline=baseline, family=family,
            margin=margin, bootstrap=bootstrap or None,
        )  # fmt: skip
        return Sweep.model_validate(body)

    def power(
        self,
        sweep_id: str,
        delta: float,
        *,
        power: float = 0.8,
        alpha: float = 0.05,
        metric: str | None = None,
        family: str | None = None,
    ) -> Power:
        """The seeds each comparison needs to detect `delta` (alpha split over the family),
        and the smallest difference the current seeds detect."""
        body = self._c.get(
            f"/v1/sweeps/{sweep_id}/power", delta=delta, power=power, alpha=alpha,
            metric=metric, family=family,
        )  # fmt: skip
        return Power.model_validate(body)

    def add_seeds(self, sweep_id: str, seeds: list[int]) -> Sweep:
        """Run every arm on more seeds (each new run is its arm's spec with the new seed)."""
        response = self._c.request("POST", f"/v1/sweeps/{sweep_id}/seeds", json={"seeds": seeds})
        return Sweep.model_validate(response.json())

    def cancel(self, sweep_id: str) -> Sweep:
        """Cancel every experiment of the sweep that has not ended; a search asks no more."""
        return Sweep.model_validate(self._c.request("POST", f"/v1/sweeps/{sweep_id}/cancel").json())

    def list(self, *, page_size: int = 100) -> Iterator[SweepSummary]:
        """Every sweep, newest first."""
        for page in self._pages("/v1/sweeps", limit=page_size):
            yield from SweepList.model_validate(page).items

    def wait(
        self,
        sweep_id: str,
        *,
        timeout: float | None = None,
        poll: float = 2.0,
        progress: bool = False,
    ) -> Sweep:
        """Poll until every experiment has finished; `progress=True` draws a bar."""
        if progress:
            from actlab.progress import SweepBar

            with SweepBar() as bar:
                return self._wait(sweep_id, timeout, poll, bar.update)
        return self._wait(sweep_id, timeout, poll, None)

    def _wait(self, sweep_id: str, timeout: float | None, poll: float, update: Any) -> Sweep:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sweep = self.get(sweep_id)
            if update:
                update(sweep)
            if sweep.done:
                return sweep
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{sweep_id} not done after {timeout}s: {sweep.status_counts}")
            time.sleep(poll)

    def watch(self, sweep_id: str, *, poll: float = 2.0) -> Iterator[StreamEvent]:
        """Every experiment's events (each with `experiment_id`) until the sweep ends.

        Uses the sweep's event stream; a server without one (404/405) is polled instead.
        """
        self.get(sweep_id)  # a missing sweep is a NotFound here, not a fallback
        try:
            yield from follow(self._c, f"/v1/sweeps/{sweep_id}/events", 10, 0.5)
        except (errors.NotFound, errors.ApiError) as exc:
            if exc.status not in (404, 405):
                raise
            yield from self._poll(sweep_id, poll)

    def _poll(self, sweep_id: str, poll: float) -> Iterator[StreamEvent]:
        known: dict[str, str] = {}
        while True:
            sweep = self.get(sweep_id)
            for exp in sweep.experiments:
                if known.get(exp.id) != exp.status:
                    known[exp.id] = exp.status
                    data = {"status": exp.status, "experiment_id": exp.id, "label": exp.label}
                    yield StreamEvent(kind="status", data=data, experiment_id=exp.id)
            yield StreamEvent(kind="progress", data={"status_counts": sweep.status_counts})
            if sweep.status in TERMINAL:
                yield StreamEvent(kind="end", data={"status": sweep.status})
                return
            time.sleep(poll)

    def table(
        self, sweep_id: str, *, metric: str | None = None, baseline: str | None = None
    ) -> pd.DataFrame:
        """One row per arm: label, n, mean, std, 95% CI, and pending/failed counts."""
        import pandas as pd

        sweep = self.get(sweep_id, metric=metric, baseline=baseline)
        return pd.DataFrame([row.model_dump() for row in sweep.aggregate])

    def comparisons(
        self,
        sweep_id: str,
        *,
        metric: str | None = None,
        baseline: str | None = None,
        family: str | None = None,
        margin: float | None = None,
    ) -> pd.DataFrame:
        """The family's comparisons, one row each: mean difference and CI, p-value and its
        Holm and BH adjustments, d_z and Hedges' g with CIs, and TOST with `margin`."""
        import pandas as pd

        sweep = self.get(sweep_id, metric=metric, baseline=baseline, family=family, margin=margin)
        return pd.DataFrame([row.model_dump() for row in sweep.comparisons])
