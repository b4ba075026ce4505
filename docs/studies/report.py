"""The noisy-ReLU study's tables, claims and figures, from what the server returns."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import actlab
from actlab import plotting

LAYERS = ["layer1", "layer2"]
BASELINE = "relu (σ=0, constant)"
SAME_AS_BASELINE = "σ=0, cosine"  # annealing no noise: the same unit, a consistency check


def arm_of(exp: actlab.Experiment) -> str:
    act = exp.spec["activation"]
    if act["name"] != "noisy_relu":
        return act["name"]
    sigma, kind = act["params"]["sigma"], exp.spec["noise_schedule"]["kind"]
    return "relu (σ=0, constant)" if sigma == 0 and kind == "constant" else f"σ={sigma:g}, {kind}"


def generalisation_gap(summary: dict[str, float], other: str = "test/acc") -> float:
    """train/acc − `other`, both measured in eval mode (noise off). A run from before the
    engine reported `train_running/*` holds the noisy running mean as train/acc, which puts
    the gap of a noisy unit low by construction: such a run is refused, not reported."""
    if "train_running/acc" not in summary or "train/acc" not in summary:
        raise ValueError(
            "this run has no eval-mode train/acc (trained before train_running/* existed, "
            "or with training.train_eval_size 0): its train-test gap would be biased; rerun it"
        )
    return summary["train/acc"] - summary[other]


def collect(client: actlab.Client, sweep_ids: list[str]) -> dict[str, dict[int, dict[str, float]]]:
    """arm -> seed -> the succeeded experiment's summary (plus the generalisation gap)."""
    arms: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for sweep_id in sweep_ids:
        for exp in client.experiments.list(sweep=sweep_id, status="succeeded"):
            s = dict(exp.summary or {})
            s["gap"] = generalisation_gap(s)
            for layer in LAYERS:  # tanh has no dead units or exact zeros: not reported
                for what in ("dead_fraction", "sparsity"):
                    s.setdefault(f"act/{layer}/{what}", math.nan)
            arms[arm_of(exp)][exp.spec["seed"]] = s
    return dict(sorted(arms.items(), key=lambda kv: _order(kv[0])))


def _order(arm: str) -> tuple[int, str, float]:
    """ReLU first, then by schedule and sigma, tanh last."""
    if arm == BASELINE:
        return (0, "", 0.0)
    if not arm.startswith("σ="):
        return (2, arm, 0.0)
    sigma, kind = arm.removeprefix("σ=").split(", ")
    return (1, kind, float(sigma))


def ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% t interval."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), math.nan, math.nan
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
    return float(a.mean()), float(a.mean() - half), float(a.mean() + half)


def paired(
    arm: dict[int, dict], base: dict[int, dict], key: str
) -> tuple[float, float, float, float]:
    """Mean difference (arm - base) over shared seeds, its 95% CI, and the paired t p-value."""
    seeds = sorted(set(arm) & set(base))
    d = [arm[s][key] - base[s][key] for s in seeds]
    mean, lo, hi = ci(d)
    p = float(stats.ttest_rel([arm[s][key] for s in seeds], [base[s][key] for s in seeds]).pvalue)
    return mean, lo, hi, p


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (statsmodels), in the input order; a NaN p-value
    (no test: zero variance or too few seeds) stays NaN and is not counted in the family."""
    from statsmodels.stats.multitest import multipletests

    present = [i for i, p in enumerate(pvalues) if p == p]
    adjusted = [float("nan")] * len(pvalues)
    if present:
        values = multipletests([pvalues[i] for i in present], method="holm")[1]
        for i, value in zip(present, values, strict=True):
            adjusted[i] = float(value)
    return adjusted


def _fmt(mean: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def arm_table(arms: dict[str, dict[int, dict[str, float]]]) -> list[str]:
    head = "| arm | n | test acc [95% CI] | gap train−test [95% CI] |"
    head += "".join(f" dead {layer} | sparsity {layer} |" for layer in LAYERS)
    lines = [head, "|" + " --- |" * (4 + 2 * len(LAYERS))]
    for arm, seeds in arms.items():
        rows = list(seeds.values())
        cells = [arm, str(len(rows))]
        cells.append(_fmt(*ci([r["test/acc"] for r in rows])))
        cells.append(_fmt(*ci([r["gap"] for r in rows])))
        for layer in LAYERS:
            for what in ("dead_fraction", "sparsity"):
                mean = float(np.mean([r[f"act/{layer}/{what}"] for r in rows]))
                cells.append(f"{mean:.3f}" if math.isfinite(mean) else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def comparison_table(arms: dict, key: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Each arm minus ReLU, paired by seed, Holm-corrected across the arms."""
    base = arms[BASELINE]
    others = [
        a
        for a in arms
        if a not in (BASELINE, SAME_AS_BASELINE)
        and all(math.isfinite(r[key]) for r in arms[a].values())
    ]
    rows = [
        dict(zip(("diff", "lo", "hi", "p"), paired(arms[a], base, key), strict=True)) | {"arm": a}
        for a in others
    ]
    for row, adj in zip(rows, holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = adj
    lines = [
        f"| arm | Δ {key} vs ReLU [95% CI] | p (paired t) | p (Holm) |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        diff = _fmt(r["diff"], r["lo"], r["hi"], 4)
        lines.append(f"| {r['arm']} | {diff} | {r['p']:.3g} | {r['p_holm']:.3g} |")
    return lines, rows


def _verdict(rows: list[dict[str, Any]], sign: int) -> tuple[int, int]:
    """How many arms differ from ReLU in the direction `sign` at Holm p < 0.05."""
    noisy = [r for r in rows if r["arm"].startswith("σ=")]
    hits = [r for r in noisy if r["p_holm"] < 0.05 and sign * r["diff"] > 0]
    return len(hits), len(noisy)


def claims(
    arms: dict, dead_rows: list[dict], gap_rows: list[dict], acc_rows: list[dict]
) -> list[str]:
    """The two claims, checked against the data with their uncertainty."""
    fewer, n = _verdict(dead_rows, -1)
    smaller, _ = _verdict(gap_rows, -1)
    better, _ = _verdict(acc_rows, +1)
    worse, _ = _verdict(acc_rows, -1)
    relu = list(arms[BASELINE].values())
    out = [
        "1. *Noise reduces dead units.* "
        f"{fewer} of {n} noisy arms have fewer dead units (mean over layers) than ReLU at "
        "Holm-corrected p < 0.05 (tables above). "
        + (
            "The data support the claim for those arms."
            if fewer
            else "The data do not support it here."
        )
        + " *Noise acts as a regulariser:* "
        f"{smaller} of {n} arms have a smaller train−test gap than ReLU at Holm p < 0.05"
        + (" — evidence of regularisation for those arms." if smaller else "; no arm shows it.")
        + f" But {better} of {n} noisy arms have a higher test accuracy than ReLU at Holm"
        f" p < 0.05 and {worse} a lower one: where the gap shrinks, it is because training"
        " accuracy falls, not because test accuracy rises"
        + (" (here, at least)." if not better else "; see the arms that gain.")
    ]
    parts = []
    for layer in LAYERS:
        mean, lo, hi = ci([r[f"act/{layer}/sparsity"] for r in relu])
        inside = lo >= 0.70 and hi <= 0.85
        overlaps = lo <= 0.85 and hi >= 0.70
        word = "inside" if inside else ("overlapping" if overlaps else "outside")
        parts.append(f"{layer} {mean:.1%} [{lo:.1%}, {hi:.1%}], {word} that range")
    out.append(
        "2. *ReLU hidden layers are 70–85% sparse.* ReLU's sparsity: " + "; ".join(parts) + "."
    )
    return out


def _short(label: str | None) -> str:
    if not label or label == "base":
        return "tanh"
    parts = dict(p.split("=", 1) for p in label.split(","))
    return f"σ={parts['activation.params.sigma']}, {parts['noise_schedule.kind']}"


def figures(client: actlab.Client, sweep_ids: list[str], arms: dict, out: Path) -> list[str]:
    """val/acc curves by arm (mean, 95% band) per schedule, and dead units per layer."""
    frame = client.metrics(sweep=sweep_ids[0], names="val/acc")
    frame["arm"] = frame["arm"].map(_short)
    made = []
    for kind in ("constant", "cosine"):
        part = frame[frame["arm"].str.endswith(kind) | (frame["arm"] == "σ=0.0, constant")]
        name = f"val_acc_{kind}.png"
        plotting.plot(part, "val/acc", out / name)
        made.append(f"![val/acc, {kind} noise]({name})")
    fig, axes = plt.subplots(1, len(LAYERS), figsize=(12, 4), sharey=True)
    names = [a for a in arms if a.startswith(("σ=", "relu"))]  # tanh has no such units
    for ax, layer in zip(axes, LAYERS, strict=True):
        for i, key in enumerate(("dead_fraction", "sparsity")):
            means = [np.mean([r[f"act/{layer}/{key}"] for r in arms[a].values()]) for a in names]
            ax.barh(np.arange(len(names)) + 0.4 * i, means, height=0.4, label=key)
        ax.set_yticks(np.arange(len(names)) + 0.2, names, fontsize="small")
        ax.set_title(layer)
        ax.invert_yaxis()
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "units.png", dpi=100)
    plt.close(fig)
    made.append("![dead fraction and sparsity per layer](units.png)")
    return made


def _wall_minutes(client: actlab.Client, sweep_ids: list[str]) -> float:
    """From the first experiment's creation to the last one's end, in minutes."""
    exps = [e for s in sweep_ids for e in client.experiments.list(sweep=s)]
    ends = [e.finished_at for e in exps if e.finished_at]
    return (max(ends) - min(e.created_at for e in exps)).total_seconds() / 60


def write_report(client: actlab.Client, sweep_ids: list[str], out: Path, waited_s: float) -> None:
    """docs/studies/noisy-relu.md with its figures."""
    arms = collect(client, sweep_ids)
    for seeds in arms.values():
        for s in seeds.values():
            s["dead"] = float(np.mean([s[f"act/{layer}/dead_fraction"] for layer in LAYERS]))
    acc_lines, acc_rows = comparison_table(arms, "test/acc")
    gap_lines, gap_rows = comparison_table(arms, "gap")
    dead_lines, dead_rows = comparison_table(arms, "dead")
    epochs = next(iter(arms[BASELINE].values()))["epochs"]
    text = TEMPLATE.format(
        epochs=int(epochs),
        n_runs=sum(len(s) for s in arms.values()),
        sweeps=", ".join(f"`{s}`" for s in sweep_ids),
        minutes=_wall_minutes(client, sweep_ids),
        arms="\n".join(arm_table(arms)),
        acc="\n".join(acc_lines),
        gap="\n".join(gap_lines),
        dead="\n".join(dead_lines),
        claims="\n".join(claims(arms, dead_rows, gap_rows, acc_rows)),
        figures="\n\n".join(figures(client, sweep_ids, arms, out)),
    )
    (out / "noisy-relu.md").write_text(text)
    print(f"wrote {out / 'noisy-relu.md'}")


TEMPLATE = """# Study: NoisyReLU on MNIST-1D

Generated by `python docs/studies/noisy_relu.py` through the actlab client against a running
actlab (sweeps {sweeps}); every number below is what the server returned. {n_runs} runs:
the MNIST-1D MLP (100-100, Adam lr 0.01, batch 100, {epochs} epochs) with NoisyReLU at
σ ∈ {{0, 0.1, 0.2, 0.3, 0.5, 1.0}}, noise constant or cosine-annealed to 0 over training,
and tanh, each with seeds 0–4. σ=0 is plain ReLU (the baseline; σ=0 cosine is the same
unit and serves as a check). Test accuracy, the generalisation gap (train − test accuracy,
both in eval mode: `train/acc` on the first 1000 training examples with the noise off)
and the per-layer diagnostics are each run's values at its last evaluation. Intervals are
95% t intervals over seeds; comparisons are paired by seed, with Holm-corrected p-values
over the arms of each table.

The {n_runs} runs took {minutes:.0f} minutes from the first submission to the last result, on a
2-core machine shared with other work at the time (one worker process, `actlab up`).

## Per arm

{arms}

Dead: the fraction of units that are zero for every example of the evaluation split;
sparsity: the fraction of zero activations (see docs/activations.md, "Diagnostics"); tanh
has neither. "σ=0, cosine" anneals no noise: the same unit as ReLU, a consistency check,
left out of the comparisons.

## Paired comparisons with ReLU (σ = 0, constant)

{acc}

{gap}

{dead}

(`dead` is the dead-unit fraction averaged over both layers.)

## The claims

{claims}

With 5 seeds per arm, differences smaller than about one CI half-width are not resolved;
"not significant" here means "not shown", not "no effect". {epochs} epochs is a short
budget: the ranking of arms may change with longer training.

## Figures

{figures}
"""
