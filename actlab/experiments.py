"""`client.experiments`: submit, fork, get, list, wait, watch, cancel, retry, weights."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from actlab import errors, specs, sse
from actlab.models import Experiment, ExperimentList, MetricSeries, SpecPreview, StreamEvent
from actlab.resource import Resource

if TYPE_CHECKING:
    from actlab.client import Client

Update = Callable[[Experiment], None]


class Experiments(Resource):
    def submit(
        self,
        spec: specs.SpecLike,
        *,
        overrides: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Experiment:
        """Submit a spec (dict or YAML/JSON path), with dotted-path `overrides`."""
        created = self._submit("/v1/experiments", spec, overrides, idempotency_key)
        return Experiment.model_validate(created)

    def preview(
        self,
        spec: specs.SpecLike,
        *,
        overrides: Mapping[str, Any] | None = None,
        evaluations: bool = False,
        max_points: int | None = None,
    ) -> SpecPreview:
        """The spec's steps per epoch, total steps, and `noise/scale` and `lr` by step
        (only at the steps it evaluates with `evaluations=True`); nothing is submitted."""
        body = specs.apply(specs.load(spec), overrides)
        params: dict[str, Any] = {"steps": "evaluations" if evaluations else "all"}
        if max_points is not None:
            params["max_points"] = max_points
        response = self._c.request("POST", "/v1/experiments/preview", json=body, params=params)
        return SpecPreview.model_validate(response.json())

    def fork(
        self,
        experiment_id: str,
        *,
        at_step: int,
        overrides: Mapping[str, Any] | None = None,
        name: str | None = None,
        noise_clock: str = "continue",
    ) -> Experiment:
        """A new experiment that starts from this one's checkpoint at `at_step` with the
        dotted-path `overrides` (e.g. `{"noise_schedule.kind": "constant"}`); its first
        `at_step` steps are the parent's, exactly. `noise_clock="restart"` starts the noise
        schedule's clock at `at_step`. See `checkpoints()` for the steps it can start at."""
        body: dict[str, Any] = {
            "at_step": at_step,
            "overrides": dict(overrides or {}),
            "noise_clock": noise_clock,
        }
        if name is not None:
            body["name"] = name
        response = self._c.request("POST", f"/v1/experiments/{experiment_id}/fork", json=body)
        return Experiment.model_validate(response.json())

    def checkpoints(self, experiment_id: str) -> builtins.list[int]:
        """The steps the experiment can be forked at."""
        body = self._c.get(f"/v1/experiments/{experiment_id}/checkpoints")
        return builtins.list(body["steps"])

    def get(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate(self._c.get(f"/v1/experiments/{experiment_id}"))

    def list(
        self,
        *,
        status: str | None = None,
        sweep: str | None = None,
        activation: str | None = None,
        tag: str | None = None,
        parent: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Experiment]:
        """Every matching experiment, newest first, following cursors page by page
        (`parent`: only the forks of that experiment)."""
        filters = {
            "status": status,
            "sweep_id": sweep,
            "activation": activation,
            "tag": tag,
            "parent_id": parent,
        }
        for page in self._pages("/v1/experiments", **filters, limit=page_size):
            yield from ExperimentList.model_validate(page).items

    def series(self, experiment_id: str, names: Sequence[str] | None = None) -> MetricSeries:
        """One experiment's series by name."""
        body = self._c.get(f"/v1/experiments/{experiment_id}/metrics", name=names)
        return MetricSeries.model_validate(body)

    def metric_names(self, experiment_id: str) -> builtins.list[str]:
        """The names of the metrics the experiment has reported."""
        return builtins.list(self._c.get(f"/v1/experiments/{experiment_id}/metric-names")["names"])

    def wait(
        self,
        experiment_id: str,
        *,
        timeout: float | None = None,
        poll: float = 1.0,
        progress: bool = False,
        on_update: Update | None = None,
    ) -> Experiment:
        """Poll until it succeeds, fails or is cancelled; `progress=True` draws a bar."""
        if progress:
            from actlab.progress import ExperimentBar  # rich, only when asked for

            with ExperimentBar(self._c) as bar:
                return self.wait(experiment_id, timeout=timeout, poll=poll, on_update=bar.update)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            exp = self.get(experiment_id)
            if on_update:
                on_update(exp)
            if exp.done:
                return exp
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{experiment_id} still {exp.status} after {timeout}s")
            time.sleep(poll)

    def watch(
        self, experiment_id: str, *, reconnects: int = 10, backoff: float = 0.5
    ) -> Iterator[StreamEvent]:
        """Its events, progress and metric points as they happen, until it ends.

        A dropped connection is re-opened with `Last-Event-ID`, so the server resumes after
        the last event and metric point seen, with no gap and no duplicate.
        """
        yield from follow(self._c, f"/v1/experiments/{experiment_id}/events", reconnects, backoff)

    def cancel(self, experiment_id: str) -> Experiment:
        body = self._c.request("POST", f"/v1/experiments/{experiment_id}/cancel").json()
        return Experiment.model_validate(body)

    def retry(self, experiment_id: str) -> Experiment:
        body = self._c.request("POST", f"/v1/experiments/{experiment_id}/retry").json()
        return Experiment.model_validate(body)

    def download_weights(self, experiment_id: str, path: str | Path | None = None) -> Path:
        """Save the final weights (safetensors) to `path` (default `<id>.safetensors`)."""
        target = Path(path or f"{experiment_id}.safetensors")
        response = self._c.request("GET", f"/v1/experiments/{experiment_id}/weights")
        target.write_bytes(response.content)
        return target


def follow(client: Client, path: str, reconnects: int, backoff: float) -> Iterator[StreamEvent]:
    """An SSE stream at `path`, re-opened with Last-Event-ID until its `end` frame."""
    # Ids ("E-M": largest event id, largest metric-point id sent) never decrease, but
    # several frames may share one (a progress or end frame advances neither): the server,
    # not the client, skips what a reconnect already delivered.
    last_id: str | None = None
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            for frame in _open(client, path, headers):
                failures = 0
                if frame.id is not None:
                    last_id = frame.id
                yield _event(frame)
                if frame.event == "end":
                    return
        except (httpx.TransportError, errors.ServerError) as exc:
            failures += 1
            if failures > reconnects:
                raise errors.ConnectionFailed(f"stream {path} lost: {exc}") from exc
        time.sleep(backoff * min(failures, 5))


def _open(client: Client, path: str, headers: dict[str, str]) -> Iterator[sse.Frame]:
    with client.http.stream(
        "GET", path, params={"stream": "true"}, headers=headers, timeout=httpx.Timeout(60.0)
    ) as response:
        if response.status_code >= 400:
            response.read()
            raise errors.from_response(response)
        yield from sse.frames(response.iter_lines())


def _event(frame: sse.Frame) -> StreamEvent:
    data = frame.json()
    experiment = data.get("experiment_id") if isinstance(data, dict) else None
    return StreamEvent(kind=frame.event, data=data, id=frame.id, experiment_id=experiment)
