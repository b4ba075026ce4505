"""sweep create, show, power, add-seeds, cancel, ls."""

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
        all_pairs = sweep.family is not None and sweep.family.kind == "all_pairs"
        rows = [
            [c.label, *([c.baseline_label] if all_pairs else []), c.n_pairs, c.mean_diff,
             c.ci_low, c.ci_high, c.p_value, c.p_holm, c.d_z if c.test == "paired_t" else
             c.hedges_g, ", ".join(c.flags) or ("welch" if c.test == "welch" else "")]
            for c in sweep.comparisons
        ]  # fmt: skip
        columns = ["arm", *(["minus"] if all_pairs else []), "pairs", "mean diff", "CI low",
                   "CI high", "p", "p (Holm)", "d_z / g", "note"]  # fmt: skip
        margin = sweep.comparisons[0].margin
        if margin is not None:  # equivalence: small TOST p supports |diff| < margin
            columns.append(f"TOST p (±{margin:g})")
            for row, c in zip(rows, sweep.comparisons, strict=True):
                row.append(c.tost_p)
        size = sweep.family.size if sweep.family else len(rows)
        title = (
            f"all pairs ({size} tests, Holm over them)"
            if all_pairs
            else f"paired by seed, minus {sweep.comparisons[0].baseline_label} "
            f"({size} tests, Holm over them)"
        )
        console.print(table(title, columns, rows))
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
    family: Annotated[
        str | None,
        typer.Option(help="baseline (each arm with it) or all_pairs: what Holm corrects over"),
    ] = None,
    margin: Annotated[
        float | None, typer.Option(help="Equivalence margin: adds TOST p-values")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """The aggregate table with confidence intervals, and the family's comparisons."""
    with client(url, api_key) as c:
        sweep = c.sweeps.get(
            sweep_id, metric=metric, baseline=baseline, family=family, margin=margin
        )
        render(sweep)


@app.command("power")
def power(
    sweep_id: Annotated[str, typer.Argument(help="Sweep id")],
    delta: Annotated[float, typer.Option(help="The difference to detect, in the metric's units")],
    power_: Annotated[float, typer.Option("--power", help="Power to detect it with")] = 0.8,
    alpha: Annotated[float, typer.Option(help="Over the family (split as alpha / m)")] = 0.05,
    metric: Annotated[str | None, typer.Option(help="Plan for this metric")] = None,
    family: Annotated[str | None, typer.Option(help="baseline or all_pairs")] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """How many seeds each comparison needs to detect DELTA, and what the current detect."""
    with client(url, api_key) as c:
        p = c.sweeps.power(sweep_id, delta, power=power_, alpha=alpha, metric=metric, family=family)
    rows = [
        [r.label, r.baseline_label, r.n_pairs, r.sd_diff, r.seeds_needed, r.detectable_delta,
         r.note or ""]
        for r in p.rows
    ]  # fmt: skip
    columns = ["arm", "minus", "pairs", "SD of diffs", f"seeds for {delta:g}",
               f"detectable at {p.power:g}", "note"]  # fmt: skip
    title = (
        f"{p.metric}: power {p.power:g}, alpha {p.alpha:g} over {p.family_size} tests "
        f"({p.alpha_per_test:.3g} each)"
    )
    console.print(table(title, columns, rows))


@app.command("add-seeds")
def add_seeds(
    sweep_id: Annotated[str, typer.Argument(help="Sweep id")],
    seeds: Annotated[list[int], typer.Argument(help="New seeds")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Run every arm of the sweep on more seeds, paired with the ones it has."""
    with client(url, api_key) as c:
        sweep = c.sweeps.add_seeds(sweep_id, seeds)
    console.print(f"{sweep.id} seeds {', '.join(map(str, sweep.seeds))} ({sweep.size} runs)")


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
