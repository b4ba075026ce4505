"""Generate docs/studies/continuation.md and its figure through the client: a continuation
study of activation noise (docs/forks.md).

    actlab up &                                   # or any server: ACTLAB_URL, ACTLAB_API_KEY
    python docs/studies/continuation.py [--epochs 10] [--out docs/studies]

Trains one NoisyReLU run (sigma 0.5, constant noise), then forks it at its midpoint into three
arms, noise kept, off and doubled, each with five seeds: every fork starts from the same
weights, optimizer state and data order at step k; a seed is the noise drawn from k on. It
re-uses what a previous run created (found by name) and writes the report from what the
server returns.
"""

from __future__ import annotations

import argparse
import math
import textwrap
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import actlab

SEEDS = [0, 1, 2, 3, 4]
ARMS = {1.0: "noise kept", 0.0: "noise off", 2.0: "noise doubled"}
METRIC = "test/acc"


def parent_spec(epochs: int) -> dict[str, Any]:
    return {
        "name": f"continuation-parent-e{epochs}",
        "seed": 0,
        "dataset": {"name": "mnist1d"},
        "model": {"arch": "mlp", "hidden": [100, 100]},
        "activation": {"name": "noisy_relu", "params": {"sigma": 0.5}},
        "noise_schedule": {"kind": "constant", "start": 1.0},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": epochs, "batch_size": 100},
        "tags": ["study"],
    }


def _sweep(client: actlab.Client, name: str, body: dict[str, Any]) -> str:
    """The id of the sweep called `name`, created from `body` if not there yet."""
    found = [s for s in client.sweeps.list() if s.name == name]
    if found:
        return found[0].id
    return client.sweeps.create({"name": name, **body}).id


def _fork_body(source: dict[str, Any]) -> dict[str, Any]:
    return {
        "fork": source,
        "grid": {"noise_schedule.start": list(ARMS)},
        "metric": METRIC,
        "baseline": {"noise_schedule.start": 1.0},
        "tags": ["study"],
        "packing": {"max_members": 16},
    }


def ensure(client: actlab.Client, epochs: int) -> tuple[actlab.Experiment, str, str]:
    """The parent (trained to the end), the fork sweep at its midpoint over seeds, and the
    fork sweep of a sweep of parents (one per seed), each member forked at the midpoint."""
    spec = parent_spec(epochs)
    found = [e for e in client.experiments.list(tag="study") if e.name == spec["name"]]
    parent = found[0] if found else client.experiments.submit(spec)
    parents = _sweep(
        client,
        f"continuation-parents-e{epochs}",
        {
            "base_spec": {k: v for k, v in spec.items() if k not in ("name", "seed")},
            "seeds": SEEDS,
            "metric": METRIC,
            "tags": ["study"],
            "packing": {"max_members": 16},
        },
    )
    parent = client.experiments.wait(parent.id, progress=True)
    client.sweeps.wait(parents, progress=True)
    steps = client.experiments.checkpoints(parent.id)
    k = steps[len(steps) // 2 - 1]  # the evaluation at the midpoint
    one = _fork_body({"experiment_id": parent.id, "at_step": k})
    seeds = _sweep(client, f"continuation-e{epochs}", {**one, "seeds": SEEDS})
    each = _fork_body({"sweep_id": parents, "at_step": k})
    paired = _sweep(client, f"continuation-paired-e{epochs}", each)
    return parent, seeds, paired


def _cell(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "-"
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _signed(mean: float, low: float, high: float) -> str:
    return f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"


def analyse(client: actlab.Client, sweep_id: str) -> dict[str, Any]:
    """Per arm: the seeds' values; against the kept arm, paired by seed: the difference, its
    interval, p, Holm p and d_z (scipy), and whether the server's comparisons agree."""
    from report import generalisation_gap, holm  # docs/studies/report.py, beside this script

    sweep = client.sweeps.get(sweep_id)
    by_arm: dict[float, dict[int, dict[str, Any]]] = {start: {} for start in ARMS}
    for e in sweep.experiments:
        exp = client.experiments.get(e.id)
        if exp.status == "succeeded":
            by_arm[e.point["noise_schedule.start"]][e.seed] = dict(exp.summary or {})
    kept = by_arm[1.0]
    rows = []
    for start, label in ARMS.items():
        values = [by_arm[start][s][METRIC] for s in sorted(by_arm[start])]
        gaps = [generalisation_gap(by_arm[start][s], METRIC) for s in by_arm[start]]
        rows.append((label, values, gaps))
    comparisons, p_values = [], []
    for start, label in ARMS.items():
        if start == 1.0:
            continue
        seeds = sorted(set(by_arm[start]) & set(kept))
        ours, theirs = [by_arm[start][s][METRIC] for s in seeds], [kept[s][METRIC] for s in seeds]
        diff = np.subtract(ours, theirs)
        t = stats.ttest_rel(ours, theirs)
        ci = t.confidence_interval(0.95)
        dz = float(diff.mean() / diff.std(ddof=1)) if diff.std(ddof=1) > 0 else math.inf
        comparisons.append((start, label, len(seeds), float(diff.mean()), ci.low, ci.high, dz))
        p_values.append(float(t.pvalue))
    served = {c.point["noise_schedule.start"]: c for c in sweep.comparisons}
    agree = all(
        math.isclose(served[c[0]].mean_diff or math.nan, c[3], abs_tol=1e-12)
        and math.isclose(served[c[0]].p_value or math.nan, p, rel_tol=1e-9)
        for c, p in zip(comparisons, p_values, strict=True)
    )
    return {
        "sweep": sweep,
        "by_arm": by_arm,
        "rows": rows,
        "comparisons": comparisons,
        "p": p_values,
        "holm": holm(p_values),
        "agree": agree,
    }


def _tables(a: dict[str, Any]) -> list[str]:
    lines = [
        f"| arm | n | {METRIC} [95% CI] | gap train−test [95% CI] |",
        "| --- | --- | --- | --- |",
    ]
    for label, values, gaps in a["rows"]:
        lines.append(f"| {label} | {len(values)} | {_ci(values)} | {_ci(gaps)} |")
    lines += [
        "",
        f"Against the kept arm, paired by seed (the server's own comparisons, GET "
        f"/v1/sweeps/{{id}}, {'agree' if a['agree'] else 'DISAGREE'}):",
        "",
        "| arm | pairs | Δ test acc [95% CI] | p | p (Holm) | d_z |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c, p, ph in zip(a["comparisons"], a["p"], a["holm"], strict=True):
        _, label, n, mean, low, high, dz = c
        cells = f"{_signed(mean, low, high)} | {p:.3g} | {ph:.3g} | {dz:.2f}"
        lines.append(f"| {label} | {n} | {cells} |")
    return lines


def write_report(
    client: actlab.Client,
    parent: actlab.Experiment,
    sweep_ids: tuple[str, str],
    out: Path,
    waited_s: float,
) -> Path:
    one, paired = analyse(client, sweep_ids[0]), analyse(client, sweep_ids[1])
    sweep, kept = one["sweep"], one["by_arm"][1.0]
    k = int(sweep.fork["at_step"]) if sweep.fork else 0
    sweep_id = sweep.id
    figure = out / "continuation_val_acc.png"
    _plot(client, parent, sweep, k, figure)
    parent_test = (parent.summary or {}).get(METRIC)
    same = kept.get(int(parent.spec["seed"]), {}).get(METRIC)
    took = f"{waited_s:.0f} s" if waited_s < 120 else f"{waited_s / 60:.1f} minutes"
    intro = [
        "Generated by `python docs/studies/continuation.py` through the actlab client against a",
        f"running actlab (parent `{parent.id}`, fork sweeps `{sweep_id}` and "
        f"`{paired['sweep'].id}`); every number below is what the server returned.",
        "",
        f"The parent: the MNIST-1D MLP (100-100, Adam lr 0.01, batch 100, "
        f"{parent.spec['training']['epochs']} epochs) with NoisyReLU, sigma 0.5, constant noise, "
        f"seed {parent.spec['seed']}. At step {k} (the evaluation at its midpoint) it was forked "
        "into three arms: the noise kept (multiplier 1), off (0) and doubled (2), each with "
        f"seeds {SEEDS[0]}-{SEEDS[-1]}. Every fork starts from the parent's kept checkpoint at "
        f"step {k}: the same weights, Adam moments, data order and position; a fork's seed only "
        "changes the noise it draws from step k on. So the arms differ in what happens after k",
        "and in nothing else, and each comparison is paired by seed.",
        "",
        f"A check the design gives for free: the kept arm with the parent's own seed is the "
        f"parent's continuation, so its {METRIC} must equal the parent's: "
        f"{same!r} (fork) and {parent_test!r} (parent): "
        f"{'equal' if same == parent_test else 'NOT EQUAL'}.",
        "",
        f"The {len(sweep.experiments) + len(paired['sweep'].experiments)} forks (in packs of "
        f"up to 16), the parent and the {len(SEEDS)} parents of the paired design took "
        f"{took} from the first submission to the last result on a 2-core machine (one worker "
        "process, `actlab up`), shared with other work at the time (for this page: queued "
        "behind the noisy-ReLU study, under a CPU stress load).",
    ]
    lines = [
        "# Study: switching activation noise off (or doubling it) halfway through training",
        "",
        *_paragraphs(intro),
        "",
        "## One parent, five noise seeds from step k on",
        "",
        *_paragraphs(
            [
                f"Values at each run's last evaluation; 95% t intervals over the {len(SEEDS)} "
                "seeds. The differences: arm − kept, their 95% paired-t interval, the paired "
                "t-test's p, the Holm-adjusted p over the two comparisons, and Cohen's d_z (the "
                "mean difference over the standard deviation of the differences); computed with "
                "scipy (the Holm step in docs/studies/report.py) from the runs' summaries."
            ]
        ),
        "",
        *_tables(one),
        "",
        f"![val/acc of each arm after step {k} over the parent's curve]({figure.name})",
        "",
        "## Five parents, each forked from its own checkpoint",
        "",
        *_paragraphs(
            [
                f"The parents: the same spec with seeds {SEEDS[0]}-{SEEDS[-1]} (sweep "
                f"`{paired['sweep'].fork['sweep_id']}`). The fork sweep `{paired['sweep'].id}` "
                f"(`fork: {{sweep_id, at_step: {k}}}`) forks each at step {k} into the three arms, "
                "keeping its seed: the same first k steps, a different rest. Pairs are now "
                "parents (initialisation, data order and noise up to k), so the differences "
                "speak for the noise after k across initialisations, not for one set of weights. "
                "Again each kept fork is its parent's continuation: "
                f"{_kept_equal(client, paired)}.",
            ]
        ),
        "",
        *_tables(paired),
        "",
    ]
    path = out / "continuation.md"
    path.write_text("\n".join(lines))
    return path


def _kept_equal(client: actlab.Client, a: dict[str, Any]) -> str:
    """Whether each kept fork's metric equals its parent's, as a phrase."""
    same = []
    for e in a["sweep"].experiments:
        if e.point["noise_schedule.start"] != 1.0 or e.status != "succeeded":
            continue
        fork = client.experiments.get(e.id)
        assert fork.parent_id is not None
        parent = client.experiments.get(fork.parent_id)
        same.append((fork.summary or {}).get(METRIC) == (parent.summary or {}).get(METRIC))
    return f"{sum(same)} of {len(same)} equal their parent's {METRIC}"


def _paragraphs(lines: list[str]) -> list[str]:
    """The lines joined into paragraphs (split at empty lines), each wrapped at 92."""
    out: list[str] = []
    for block in "\n".join(lines).split("\n\n"):
        out += [*textwrap.wrap(" ".join(block.split("\n")), 92), ""]
    return out[:-1]


def _ci(values: list[float]) -> str:
    if len(values) < 2:
        return _cell(values[0] if values else None, None, None)
    mean = float(np.mean(values))
    half = float(stats.t.ppf(0.975, len(values) - 1) * stats.sem(values))
    return _cell(mean, mean - half, mean + half)


def _plot(client: actlab.Client, parent: actlab.Experiment, sweep: Any, k: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    own = client.experiments.series(parent.id, ["val/acc"]).series["val/acc"]
    ax.plot([p.step for p in own], [p.value for p in own], color="0.6", lw=2, label="parent")
    colours = {1.0: "tab:blue", 0.0: "tab:green", 2.0: "tab:red"}
    for start, label in ARMS.items():
        curves = []
        for e in sweep.experiments:
            if e.point["noise_schedule.start"] != start:
                continue
            points = client.experiments.series(e.id, ["val/acc"]).series["val/acc"]
            curves.append([(p.step, p.value) for p in points if p.step >= k])
        steps = [s for s, _ in curves[0]]
        mean = np.mean([[v for _, v in c] for c in curves], axis=0)
        for c in curves:
            ax.plot(steps, [v for _, v in c], color=colours[start], alpha=0.25, lw=0.8)
        ax.plot(steps, mean, color=colours[start], lw=2, label=f"{label} (mean of {len(curves)})")
    ax.axvline(k, color="k", ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("val/acc")
    ax.set_title(f"Forks at step {k} of a NoisyReLU run (σ=0.5)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    started = time.monotonic()
    with actlab.Client() as client:
        parent, seeds, paired = ensure(client, args.epochs)
        print("parent", parent.id, "fork sweeps", seeds, paired)
        for sweep_id in (seeds, paired):
            client.sweeps.wait(sweep_id, progress=True)
        waited = time.monotonic() - started
        path = write_report(client, parent, (seeds, paired), args.out, waited)
    print("wrote", path)


if __name__ == "__main__":
    main()
