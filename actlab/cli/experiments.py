"""submit, fork, ls, show, watch, cancel, retry."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from actlab.cli.common import (
    ApiKey,
    Document,
    Sets,
    Url,
    Wait,
    client,
    console,
    fmt,
    overrides,
    print_rows,
    show_experiment,
    table,
)

if TYPE_CHECKING:
    from actlab.client import Client
    from actlab.models import Experiment, StreamEvent


def submit(
    spec: Document,
    set_: Sets = None,
    wait: Wait = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Submit an experiment spec (with --set overrides); print its id."""
    with client(url, api_key) as c:
        exp = c.experiments.submit(spec, overrides=overrides(set_))
        console.print(f"{exp.id} {exp.status}")
        if wait:
            _wait_and_show(c, exp.id)


def _wait_and_show(c: Client, experiment_id: str) -> None:
    """Wait with a progress bar, show the result; exit 1 unless it succeeded."""
    done = c.experiments.wait(experiment_id, progress=True)
    show_experiment(done)
    if done.status != "succeeded":
        raise typer.Exit(1)


def fork(
    experiment_id: Annotated[str, typer.Argument(help="The experiment to fork")],
    at_step: Annotated[
        int | None,
        typer.Option("--at-step", help="A kept step; without it, the kept steps are listed"),
    ] = None,
    set_: Sets = None,
    name: Annotated[
        str | None, typer.Option(help="Default: the parent's name@step+what --set changed")
    ] = None,
    restart_noise: Annotated[
        bool,
        typer.Option("--restart-noise", help="Start the noise schedule's clock at the fork step"),
    ] = False,
    wait: Wait = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Fork an experiment at a kept step with --set overrides (noise schedule, activation
    params, lr, epochs...); its first steps are the parent's, exactly."""
    with client(url, api_key) as c:
        if at_step is None:
            steps = c.experiments.checkpoints(experiment_id)
            listed = ", ".join(map(str, steps)) or "none yet"
            console.print(f"{experiment_id} can be forked at steps: {listed}")
            return
        exp = c.experiments.fork(
            experiment_id,
            at_step=at_step,
            overrides=overrides(set_),
            name=name,
            noise_clock="restart" if restart_noise else "continue",
        )
        console.print(f"{exp.id} {exp.status} (forked from {experiment_id} at step {at_step})")
        if wait:
            _wait_and_show(c, exp.id)


def _sort_key(metric: str):  # type: ignore[no-untyped-def]
    def key(exp: Experiment) -> tuple[int, float]:
        value = (exp.summary or {}).get(metric)
        return (0, -float(value)) if isinstance(value, (int, float)) else (1, 0.0)

    return key


def _check_sortable(exps: list[Experiment], metric: str) -> None:
    """InputError listing the summaries' metrics when none has `metric` and one has ended
    (the API's rule for an unknown metric name: until a run ends, it may yet report it)."""
    from actlab.errors import InputError

    have = sorted(
        {k for e in exps for k, v in (e.summary or {}).items() if not isinstance(v, dict)}
    )
    if metric not in have and any(e.done for e in exps):
        listed = ", ".join(have) or "none"
        raise InputError(f"--sort {metric!r}: no experiment has that metric; they have: {listed}")


def ls(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    sweep: Annotated[str | None, typer.Option(help="Only this sweep's experiments")] = None,
    sort: Annotated[str | None, typer.Option(help="Sort by a summary metric, best first")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many")] = 50,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """A table of experiments, newest first (or by --sort, e.g. test/acc)."""
    with client(url, api_key) as c:
        found = c.experiments.list(status=status, sweep=sweep, page_size=min(limit, 500))
        exps = list(itertools.islice(found, limit)) if not sort else list(found)
    if sort:
        _check_sortable(exps, sort)
        exps = sorted(exps, key=_sort_key(sort))[:limit]
    shown = sort or "test/acc"
    rows = [
        [
            e.id,
            e.name or "",
            e.status,
            e.activation,
            f"{e.progress.epoch} ep / {e.progress.step} st",
            (e.summary or {}).get(shown),
        ]
        for e in exps
    ]
    print_rows(["id", "name", "status", "activation", "progress", shown], rows, shrink="name")


def show(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    as_json: Annotated[bool, typer.Option("--json", help="The raw JSON")] = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Status, progress and summary of one experiment."""
    with client(url, api_key) as c:
        exp = c.experiments.get(experiment_id)
    if as_json:
        console.print_json(exp.model_dump_json())
    else:
        show_experiment(exp)


def _line(ev: StreamEvent) -> str:
    who = f"{ev.experiment_id} " if ev.experiment_id else ""
    data = ev.data if isinstance(ev.data, dict) else {}
    if ev.kind == "metrics" and isinstance(ev.data, list):
        points = ", ".join(f"{p['name']}={fmt(p['value'])}" for p in ev.data[:6])
        more = f" (+{len(ev.data) - 6})" if len(ev.data) > 6 else ""
        return f"{who}metrics  {points}{more}"
    if ev.kind == "progress":
        if "status_counts" in data:
            return f"progress {json.dumps(data['status_counts'])}"
        step = f"{data.get('step')}/{data.get('total')}"
        return f"{who}progress {data.get('status')} epoch {data.get('epoch')} step {step}"
    if ev.kind == "end":
        return f"{who}end      {data.get('status')}"
    return f"{who}{ev.kind:<8} {data.get('status') or ''} {data.get('message') or ''}".rstrip()


def watch(
    target: Annotated[
        str, typer.Argument(help="An experiment id (exp_...) or a sweep id (swp_...)")
    ],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Follow events, progress and metrics live until the experiment (or sweep) ends."""
    with client(url, api_key) as c:
        stream = (
            c.sweeps.watch(target) if target.startswith("swp_") else c.experiments.watch(target)
        )
        for ev in stream:
            console.print(_line(ev), markup=False, highlight=False)


def cancel(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Cancel a queued or running experiment (metrics so far are kept)."""
    with client(url, api_key) as c:
        exp = c.experiments.cancel(experiment_id)
    console.print(f"{exp.id} {exp.status}")


def retry(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id")],
    wait: Wait = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Queue a failed or cancelled experiment again; it resumes from its checkpoint."""
    with client(url, api_key) as c:
        exp = c.experiments.retry(experiment_id)
        console.print(f"{exp.id} {exp.status} (attempt {exp.attempts + 1})")
        if wait:
            show_experiment(c.experiments.wait(exp.id, progress=True))


def preview(
    spec: Annotated[Path, typer.Argument(help="A spec as YAML or JSON")],
    set_: Sets = None,
    points: Annotated[int, typer.Option(help="Points of the curves to print", min=1)] = 5,
    evaluations: Annotated[
        bool, typer.Option("--evaluations", help="Only the steps the run evaluates at")
    ] = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Steps per epoch, total steps, and the noise/scale and lr a spec's run will see."""
    with client(url, api_key) as c:
        p = c.preview(spec, overrides=overrides(set_), evaluations=evaluations, max_points=points)
    console.print(
        f"training examples {p.n_train}, batch {p.batch_size}: "
        f"{p.steps_per_epoch} steps/epoch, {p.total_steps} steps in {p.total_epochs} epochs"
    )
    for note in p.notes:
        console.print(f"note: {note}", markup=False)
    lr = {q.step: q.value for q in p.series.get("lr", [])}
    rows = [[q.step, q.epoch, q.value, lr.get(q.step)] for q in p.series.get("noise/scale", [])]
    console.print(table(None, ["step", "epoch", "noise/scale", "lr"], rows))
