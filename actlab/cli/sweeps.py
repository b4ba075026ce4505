"""sweep create, sweep show, sweep cancel, sweep ls."""

from __future__ import annotations

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
    overrides,
    table,
)

if TYPE_CHECKING:
    from actlab.models import Sweep

app = typer.Typer(help="Sweeps: a grid over a base spec, times seeds.", no_args_is_help=True)


def render(sweep: Sweep) -> None:
    """The aggregate table with CIs, then the paired comparisons."""
    counts = " ".join(f"{k}={v}" for k, v in sorted(sweep.status_counts.items()))
    console.print(f"[bold]{sweep.id}[/bold]  {sweep.name}  {sweep.status}  ({counts})")
    search = sweep.search or {}
    if sweep.n_trials is not None:
        asked = sweep.n_trials - sweep.trials_left
        console.print(
            f"optuna {search.get('sampler')} on {search.get('metric')} ({search.get('mode')}): "
            f"{asked} of {sweep.n_trials} trials asked, {search.get('parallel')} at a time"
        )
    pct = round(sweep.confidence * 100)
    rows = [
        [a.label, a.n, a.mean, a.std, a.ci_low, a.ci_high, a.n_pending, a.n_failed]
        for a in sweep.aggregate
    ]
    columns = ["arm", "n", "mean", "std", f"{pct}% CI low", f"{pct}% CI high", "pending", "failed"]
    console.print(table(f"{sweep.metric} by arm", columns, rows))
    if sweep.comparisons:
        rows = [
            [c.label, c.n_pairs, c.mean_diff, c.ci_low, c.ci_high, c.p_value]
            for c in sweep.comparisons
        ]
        base = sweep.comparisons[0].baseline_label
        columns = ["arm", "pairs", "mean diff", "CI low", "CI high", "p (paired t)"]
        console.print(table(f"paired by seed, minus {base}", columns, rows))
    if sweep.rungs:
        rule = search.get("halving") or search  # an Optuna search's rung rule is its own block
        unit = rule.get("unit", "epochs")
        rows = [
            [r.rung, r.resource, "end" if r.step is None else r.step, r.reached, r.waiting,
             r.promoted, r.pruned]
            for r in sweep.rungs
        ]  # fmt: skip
        columns = ["rung", unit, "step", "reached", "waiting", "promoted", "pruned"]
        kind = "asha" if search.get("kind") == "optuna" else search.get("kind")
        title = f"{kind} on {search.get('metric')} (eta {rule.get('reduction_factor')})"
        console.print(table(title, columns, rows))
    for arm, paths in (sweep.dropped_params or {}).items():
        console.print(f"note: {arm} dropped base parameters {', '.join(paths)}")


@app.command("create")
def create(
    file: Document,
    set_: Sets = None,
    wait: Wait = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Create a sweep: one experiment per grid point and seed."""
    with client(url, api_key) as c:
        sweep = c.sweeps.create(file, overrides=overrides(set_))
        console.print(f"{sweep.id} {sweep.size} experiments")
        if wait:
            c.sweeps.wait(sweep.id, progress=True)
            render(c.sweeps.get(sweep.id))


@app.command("show")
def show(
    sweep_id: Annotated[str, typer.Argument(help="Sweep id")],
    metric: Annotated[str | None, typer.Option(help="Aggregate this metric")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="The arm to compare with (its label)")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """The aggregate table with confidence intervals, and the paired comparisons."""
    with client(url, api_key) as c:
        render(c.sweeps.get(sweep_id, metric=metric, baseline=baseline))


@app.command("cancel")
def cancel(
    sweep_id: Annotated[str, typer.Argument(help="Sweep id")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Cancel every experiment of the sweep that has not ended; a search asks no more."""
    with client(url, api_key) as c:
        sweep = c.sweeps.cancel(sweep_id)
    counts = " ".join(f"{k}={v}" for k, v in sorted(sweep.status_counts.items()))
    console.print(f"{sweep.id} {sweep.status} ({counts})")


@app.command("ls")
def ls(url: Url = None, api_key: ApiKey = None) -> None:
    """Every sweep, newest first."""
    with client(url, api_key) as c:
        rows = [[s.id, s.name, s.status, s.size, s.metric] for s in c.sweeps.list()]
    console.print(table(None, ["id", "name", "status", "size", "metric"], rows))
