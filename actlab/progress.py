"""Progress bars for `wait(progress=True)` and `actlab submit --wait` (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from actlab import errors
from actlab.models import TERMINAL, Experiment, Sweep

if TYPE_CHECKING:
    from actlab.client import Client


class ExperimentBar:
    """Epoch, step of total, ETA and the latest val/acc of one experiment."""

    def __init__(self, client: Client, metric: str = "val/acc") -> None:
        self._c = client
        self.metric = metric
        self.latest: float | None = None
        self._after = -1
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("step {task.completed}/{task.total}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metric]}"),
        )
        self.task: TaskID | None = None

    def __enter__(self) -> ExperimentBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def update(self, exp: Experiment) -> None:
        """Redraw from the experiment's state (and its newest `metric` point)."""
        self._refresh_metric(exp.id)
        shown = f"{self.metric} {self.latest:.4f}" if self.latest is not None else ""
        fields: dict[str, Any] = {"epoch": exp.progress.epoch, "metric": shown}
        if self.task is None:
            self.task = self.bar.add_task(exp.id, total=exp.progress.total, **fields)
        self.bar.update(
            self.task,
            description=f"{exp.id} {exp.status}",
            completed=exp.progress.step,
            total=exp.progress.total,
            **fields,
        )

    def _refresh_metric(self, experiment_id: str) -> None:
        try:
            body = self._c.get(
                f"/v1/experiments/{experiment_id}/metrics", name=self.metric, after_step=self._after
            )
        except errors.InvalidRequest:
            return  # not reported yet
        points = body["series"].get(self.metric) or []
        if points:
            self.latest = points[-1]["value"]
            self._after = points[-1]["step"]


class SweepBar:
    """Finished experiments of a sweep, and its status counts."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
        )
        self.task: TaskID | None = None

    def __enter__(self) -> SweepBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def update(self, sweep: Sweep) -> None:
        done = sum(n for s, n in sweep.status_counts.items() if s in TERMINAL)
        counts = " ".join(f"{k}={v}" for k, v in sorted(sweep.status_counts.items()))
        if self.task is None:
            self.task = self.bar.add_task(sweep.id, total=sweep.size, counts=counts)
        self.bar.update(self.task, completed=done, counts=counts)
