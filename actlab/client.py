"""`actlab.Client`: the HTTP API from Python (httpx + pydantic only)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx

from actlab import errors
from actlab.experiments import Experiments
from actlab.sweeps import Sweeps

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from actlab.models import Queue, SpecPreview

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUS = {502, 503, 504}


class Client:
    """A connection to an actlab server.

    `url` defaults to `ACTLAB_URL` (else http://127.0.0.1:8000) and `api_key` to
    `ACTLAB_API_KEY`; `transport` lets a caller supply its own httpx transport.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("ACTLAB_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("ACTLAB_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = retries
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self.experiments = Experiments(self)
        self.sweeps = Sweeps(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call; a problem+json answer raises its typed `ApiError`."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.ConnectionFailed(f"cannot reach actlab at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise errors.from_response(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` and return its JSON; None-valued params are left out."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post_idempotent(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        """POST with an Idempotency-Key, retried on a lost connection or 502/503/504.

        The server answers a repeated key with its first response, so a retry never creates
        a second experiment or sweep.
        """
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.post(path, json=body, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise errors.ConnectionFailed(f"cannot reach {self.url}: {exc}") from exc
            else:
                if response.status_code not in RETRY_STATUS or last:
                    if response.status_code >= 400:
                        raise errors.from_response(response)
                    return response.json()
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def queue(self) -> Queue:
        """Your running and queued work, in the order it would start: each queued one's
        position, why it waits and its estimated start (other owners' work as counts)."""
        from actlab.models import Queue

        return Queue.model_validate(self.get("/v1/queue"))

    def preview(self, spec: Any, **options: Any) -> SpecPreview:
        """`experiments.preview`: a spec's length and noise/scale and lr curves, unsubmitted."""
        return self.experiments.preview(spec, **options)

    def report(
        self, sweep_id: str, output: str | os.PathLike[str], *, format: str = "md", **options: Any
    ) -> Path:
        """A sweep's report (md, latex or html) at `output`, its figures beside it; `options`
        as `actlab report`'s: metric, family, margin, delta, curve, x, dpi."""
        from pathlib import Path

        from actlab import report as reports

        path = Path(output)
        reports.write(reports.build(self, sweep_id, path, **options), path, format)
        return path

    def metrics(
        self,
        experiments: str | Iterable[str] | None = None,
        *,
        sweep: str | None = None,
        names: str | Iterable[str] | None = None,
        max_points: int | None = None,
    ) -> pd.DataFrame:
        """Curves as a DataFrame: experiment, sweep, arm, seed, name, step, epoch, value.

        A name that none of the experiments has reported raises `InvalidRequest` (its
        `problem["names"]` lists theirs) once one of them has ended; before, it is no rows.
        """
        from actlab import frames  # pandas, only when asked for

        ids = [experiments] if isinstance(experiments, str) else list(experiments or [])
        wanted = [names] if isinstance(names, str) else list(names or [])
        params: dict[str, Any] = {"experiment_id": ids, "name": wanted}
        if sweep:
            params["sweep_id"] = sweep
        if max_points:
            params["max_points"] = max_points
        body = self.request("GET", "/v1/metrics/series", params=params).json()
        return frames.metrics_frame(body)
