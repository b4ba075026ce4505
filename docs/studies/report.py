"""The noisy-ReLU study's page (docs/studies/noisy-relu.md): the declared family's tables,
the seeds' claims checked against them, and a figure, from what the server returns.

`actlab report` writes the sweep's own report beside it (noisy-relu-report.md); this adds
what a report of one metric cannot: the outcomes the seed documents make claims about
(the eval-mode generalisation gap, dead units, sparsity), corrected as one family.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import actlab

LAYERS = ["layer1", "layer2"]
# The declared family's outcomes: (key, what it is, the direction the seeds claim).
OUTCOMES = [
    ("test/acc", "test accuracy", "higher (seed 000: noise improves generalisation)"),
    ("gap", "train − test accuracy, both in eval mode", "smaller (seed 000: noise regularises)"),
    ("dead", "dead-unit fraction, mean of the two layers", "lower (seed 000: fewer dead units)"),
    ("act/layer1/sparsity", "layer 1 zero fraction", "lower (seed 000: fewer zeros)"),
    ("act/layer2/sparsity", "layer 2 zero fraction", "lower (seed 000: fewer zeros)"),
]


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


def ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% t interval."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), math.nan, math.nan
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
    return float(a.mean()), float(a.mean() - half), float(a.mean() + half)


def collect(client: actlab.Client, sweep: actlab.models.Sweep) -> dict[str, dict[int, dict]]:
    """arm name -> seed -> the succeeded run's summary, plus `gap` and `dead`."""
    name = {a.label: sweep.labels.get(a.label, a.label) for a in sweep.aggregate}
    arms: dict[str, dict[int, dict[str, float]]] = {name[a.label]: {} for a in sweep.aggregate}
    for row in sweep.experiments:
        if row.status != "succeeded":
            continue
        s = dict(client.experiments.get(row.id).summary or {})
        s["gap"] = generalisation_gap(s)
        s["dead"] = float(np.mean([s[f"act/{layer}/dead_fraction"] for layer in LAYERS]))
        arms[name[row.label]][row.seed] = s
    return arms


def family(arms: dict, names: list[str], baseline: str) -> list[dict[str, Any]]:
    """Every (arm, outcome) of the declared family: paired by seed, Holm over all of them."""
    rows = []
    base = arms[baseline]
    for key, _, _ in OUTCOMES:
        for arm in names:
            seeds = sorted(set(arms[arm]) & set(base))
            a = np.asarray([arms[arm][s][key] for s in seeds])
            b = np.asarray([base[s][key] for s in seeds])
            diff = a - b
            mean, low, high = ci(list(diff))
            sd = float(diff.std(ddof=1))
            p = float(stats.ttest_rel(a, b).pvalue) if sd > 0 else math.nan
            dz = mean / sd if sd > 0 else math.nan
            rows.append({"key": key, "arm": arm, "n": len(seeds), "diff": mean, "lo": low,
                         "hi": high, "d_z": dz, "p": p})  # fmt: skip
    for row, adjusted in zip(rows, holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = adjusted
    return rows


def _f(x: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _ci(mean: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{_f(mean, digits)} [{_f(lo, digits)}, {_f(hi, digits)}]"


def arm_table(arms: dict, crossed: dict[str, tuple[float | None, float | None]]) -> list[str]:
    head = ["arm", "n", "test acc [95% CI, seeds]", "[95% CI, seeds × test examples]",
            "gap train − test [95% CI]"]  # fmt: skip
    head += [f"dead {layer}" for layer in LAYERS] + [f"zeros {layer}" for layer in LAYERS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for arm, seeds in arms.items():
        rows = list(seeds.values())
        low, high = crossed.get(arm, (None, None))
        cells = [arm, str(len(rows)), _ci(*ci([r["test/acc"] for r in rows])),
                 "–" if low is None else f"[{low:.3f}, {high:.3f}]",
                 _ci(*ci([r["gap"] for r in rows]))]  # fmt: skip
        for what in ("dead_fraction", "sparsity"):
            for layer in LAYERS:
                cells.append(_ci(*ci([r[f"act/{layer}/{what}"] for r in rows])))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def outcome_table(rows: list[dict], key: str, extra: dict[str, dict[str, Any]]) -> list[str]:
    """One outcome's rows of the family; test/acc adds the API's crossed interval and TOST."""
    with_api = key == "test/acc"
    head = ["arm", "pairs", "Δ vs ReLU [95% CI]", "d_z", "p", "p (Holm, 50)"]
    if with_api:
        head[3:3] = ["Δ: 95% CI, seeds × test examples", "TOST p (±0.02)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in (r for r in rows if r["key"] == key):
        cells = [r["arm"], str(r["n"]), _ci(r["diff"], r["lo"], r["hi"], 4)]
        if with_api:
            c = extra.get(r["arm"], {})
            low, high = c.get("boot_examples_ci_low"), c.get("boot_examples_ci_high")
            cells += [
                "–" if low is None else f"[{low:.4f}, {high:.4f}]",
                _p(c.get("tost_p", math.nan) or math.nan),
            ]
        cells += [_f(r["d_z"], 2), _p(r["p"]), _p(r["p_holm"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _count(rows: list[dict], key: str, sign: int) -> list[str]:
    """The arms that differ from ReLU on `key` in direction `sign`, at Holm p < 0.05."""
    return [r["arm"] for r in rows
            if r["key"] == key and r["p_holm"] < 0.05 and sign * r["diff"] > 0]  # fmt: skip


def claims(
    rows: list[dict], arms: dict, baseline: str, n_arms: int, extra: dict[str, dict[str, Any]]
) -> list[str]:
    def names(found: list[str]) -> str:
        return "; ".join(found) if found else "none"

    def arms_(n: int) -> str:
        return f"{n} arm" if n == 1 else f"{n} arms"

    better, worse = _count(rows, "test/acc", +1), _count(rows, "test/acc", -1)
    smaller, larger = _count(rows, "gap", -1), _count(rows, "gap", +1)
    # Equivalence within the margin: TOST at the family's alpha split over the arms.
    alpha = 0.05 / n_arms
    equivalent = [a for a, c in extra.items() if (c.get("tost_p") or 1.0) < alpha]
    train = ci([r["train/acc"] for r in arms[baseline].values()])
    out = [
        '1. **"Noise acts as a regulariser and improves generalisation"** (seed 000, 2.2(3)). '
        f"The eval-mode gap is smaller than ReLU's at Holm p < 0.05 for {len(smaller)} of "
        f"{n_arms} noisy arms ({names(smaller)}) and larger for {len(larger)} "
        f"({names(larger)}). Test accuracy is higher for {len(better)} ({names(better)}) and "
        f"lower for {len(worse)} ({names(worse)}); {len(equivalent)} of {n_arms} are "
        f"within ±{extra_margin(extra)} of ReLU by TOST at p < {alpha:g} (alpha over the "
        f"{n_arms} arms). ReLU's eval-mode training accuracy is {train[0]:.3f} "
        f"[{train[1]:.3f}, {train[2]:.3f}]: at this budget the gap is mostly test error. "
        + (
            "A smaller gap with no gain in test accuracy is a regulariser that costs training "
            "fit, not one that improves generalisation: the data support the first reading "
            "and not the second."
            if smaller and not better
            else (
                "The data support the claim for the arms that gain."
                if better
                else "The data do not support it at this budget."
            )
        )
    ]
    fewer_dead, more_dead = _count(rows, "dead", -1), _count(rows, "dead", +1)
    parts = []
    for layer in LAYERS:
        key = f"act/{layer}/sparsity"
        lower, higher = _count(rows, key, -1), _count(rows, key, +1)
        parts.append(f"{layer}: fewer zeros in {arms_(len(lower))} ({names(lower)}), more in "
                     f"{len(higher)} ({names(higher)})")  # fmt: skip
    contradicted = any(_count(rows, f"act/{layer}/sparsity", +1) for layer in LAYERS)
    out.append(
        '2. **"Noise reduces ReLU\'s zero activations and dead units"** (seed 000, 2.2(2)). '
        f"Dead units (mean of both layers): fewer than ReLU in {arms_(len(fewer_dead))} "
        f"({names(fewer_dead)}), more in {len(more_dead)} ({names(more_dead)}). Zeros, at "
        "Holm p < 0.05: "
        + "; ".join(parts)
        + ". "
        + (
            "Where zeros rise with noise the data contradict the seed: the zeros counted are "
            "of the clean, eval-mode pass, so training with noise changed where the trained "
            "pre-activations lie and left more of them below zero (why is not tested here)."
            if contradicted
            else "No arm has more zeros than ReLU."
        )
    )
    relu = list(arms[baseline].values())
    levels = []
    for layer in LAYERS:
        mean, lo, hi = ci([r[f"act/{layer}/sparsity"] for r in relu])
        inside = lo >= 0.70 and hi <= 0.85
        levels.append(f"{layer} {mean:.1%} [{lo:.1%}, {hi:.1%}]"
                      + (" (inside 70–85%)" if inside else " (not inside 70–85%)"))  # fmt: skip
    out.append(
        '3. **"70–85% sparsity"** (seed 004). Seed 004 cites Glorot et al. 2011: when '
        "sparsity is *forced*, 70–85% zeros is the best ratio and capacity fails beyond 85%. "
        "That is a design figure, not a measurement of trained ReLU layers, and this study "
        "does not test it. What trained ReLU layers measure here (zero fraction of the eval "
        "pass on the validation split, 95% CI over seeds): " + "; ".join(levels) + "."
    )
    return out


def extra_margin(extra: dict[str, dict[str, Any]]) -> str:
    margins = {c.get("margin") for c in extra.values()} - {None}
    return "/".join(f"{m:g}" for m in sorted(margins)) or "?"


def units_figure(arms: dict, out: Path) -> str:
    """Dead fraction and zero fraction per layer and arm (mean and 95% CI over seeds)."""
    fig, axes = plt.subplots(1, len(LAYERS), figsize=(11, 5), sharey=True)
    names = list(arms)
    y = np.arange(len(names))
    for ax, layer in zip(axes, LAYERS, strict=True):
        for i, (key, label) in enumerate((("dead_fraction", "dead units"), ("sparsity", "zeros"))):
            stats_ = [ci([r[f"act/{layer}/{key}"] for r in arms[a].values()]) for a in names]
            means = np.array([m for m, _, _ in stats_])
            err = np.array([[m - lo, hi - m] for m, lo, hi in stats_]).T
            ax.barh(y + 0.4 * i, means, height=0.4, xerr=err, label=label, capsize=2)
        ax.set_yticks(y + 0.2, names, fontsize="small")
        ax.set_title(f"{layer}: fraction (eval pass, validation split)")
        ax.set_xlabel("fraction of units (dead) or of activations (zeros)")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(out / "units.png", dpi=110)
    plt.close(fig)
    return "units.png"


def write_study(
    client: actlab.Client,
    sweep_id: str,
    out: Path,
    *,
    pilot: actlab.models.Power,
    pilot_seeds: list[int],
    final: actlab.models.Power,
    max_seeds: int,
    waited_s: float,
) -> None:
    """docs/studies/noisy-relu.md and units.png."""
    from noisy_relu import BASELINE, DELTA, FAMILY_ARMS, SAME_AS_BASELINE, STEPS

    tested = client.sweeps.get(sweep_id, metric="test/acc", margin=DELTA, bootstrap=True)
    names = {a.label: tested.labels.get(a.label, a.label) for a in tested.aggregate}
    arms = collect(client, tested)
    rows = family(arms, FAMILY_ARMS, BASELINE)
    crossed = {names[a.label]: (a.boot_examples_ci_low, a.boot_examples_ci_high)
               for a in tested.aggregate}  # fmt: skip
    extra = {names[c.label]: c.model_dump() for c in tested.comparisons}
    needed = [r.seeds_needed for r in pilot.rows if r.seeds_needed]
    detect = [r.detectable_delta for r in final.rows if r.detectable_delta]
    exps = list(client.experiments.list(sweep=sweep_id))
    ends = [e.finished_at for e in exps if e.finished_at]
    minutes = (max(ends) - min(e.created_at for e in exps)).total_seconds() / 60
    lines = [
        "# Study: NoisyReLU on MNIST-1D",
        "",
        f"Generated by `python docs/studies/noisy_relu.py` against a running actlab (sweep "
        f"`{sweep_id}`): every number is what the server returned. The sweep's own "
        "`actlab report` (arms ranked on validation accuracy, test accuracy reported, the "
        "API's comparisons, the power table and figures) is "
        "[noisy-relu-report.md](noisy-relu-report.md).",
        "",
        f"**Setup.** The MNIST-1D MLP (100-100), Adam lr 0.01, batch 100, {STEPS} steps "
        "(MNIST-1D's reference budget), NoisyReLU at σ ∈ {0, 0.1, 0.2, 0.3, 0.5, 1} with the "
        "noise constant or cosine-annealed to 0 over the run. σ = 0 constant is ReLU, the "
        f'baseline; "{SAME_AS_BASELINE}" is the same unit (every difference exactly 0: no '
        f"test, a check). {len(tested.seeds)} seeds per arm, {sum(len(s) for s in arms.values())}"
        f" runs, packed 12 to a process; {minutes:.0f} minutes from the first submission to "
        "the last result on this 2-core machine (one worker), shared with other work at the "
        "time, so an upper bound.",
        "",
        "**Measured how.** Every figure is the run's last evaluation, in eval mode (noise "
        "off): test accuracy on the 1,000 test examples; the generalisation gap is "
        "`train/acc` (the first 1,000 training examples, eval mode) minus `test/acc`; dead "
        "units and zeros are of the eval pass over the validation split (docs/activations.md,"
        ' "Diagnostics: definitions").',
        "",
        "## How many seeds",
        "",
        f"A pilot of {len(pilot_seeds)} seeds (0–{max(pilot_seeds)}) gave each comparison's SD"
        f" of paired test-accuracy differences; the power table (statsmodels' `TTestPower`, "
        f"alpha 0.05 split over the {pilot.family_size} comparisons: "
        f"{pilot.alpha_per_test:.4f} each, power 0.8) asked for these seeds to detect "
        f"Δ = {DELTA}:",
        "",
        "| arm | SD of differences (pilot) | seeds for Δ = 0.02 |",
        "| --- | --- | --- |",
    ]
    for r in pilot.rows:
        if r.seeds_needed:
            lines.append(f"| {names.get(r.label, r.label)} | {_f(r.sd_diff, 4)} | "
                         f"{r.seeds_needed} |")  # fmt: skip
    most = max(needed, default=len(pilot_seeds))
    lines += [
        "",
        f"The most demanding comparison needs {most}; the study ran "
        f"{len(tested.seeds)} (at most {max_seeds} were allowed), added to the same sweep "
        "so every seed stays paired. With them, the smallest test-accuracy difference "
        "detectable at power 0.8 under the same correction is "
        f"{min(detect):.4f} to {max(detect):.4f} depending on the arm (the final power "
        "table): differences smaller than that can go unseen, so a non-significant result "
        'below is "not shown", never "no effect"; the TOST column tests "no effect '
        f'larger than {DELTA}" directly.'
        if detect
        else "",
        "",
        "## The family, declared before the results",
        "",
        f"Each of the {len(FAMILY_ARMS)} noisy arms minus ReLU, paired by seed, on each of "
        f"{len(OUTCOMES)} outcomes: {len(rows)} paired t-tests, Holm-corrected together "
        "(the claims below draw on all of them). The seeds' claims set the direction read "
        "as support:",
        "",
    ]
    lines += [f"- `{key}`: {what}; the claim: {claim}." for key, what, claim in OUTCOMES]
    lines += [
        "",
        "## Per arm",
        "",
        *arm_table(arms, crossed),
        "",
        "Intervals are 95% t intervals over seeds, except the second column: the bootstrap "
        "that resamples the test examples as well as the seeds (docs/statistics.md, "
        '"Test-set uncertainty"), so it is the interval to quote for an accuracy as a '
        "population figure. Dead: the fraction of units zero for every validation example; "
        "zeros: the fraction of activations exactly zero.",
        "",
        "## Each noisy arm minus ReLU",
        "",
    ]
    for key, what, _ in OUTCOMES:
        lines += [f"### {what} (`{key}`)", "", *outcome_table(rows, key, extra), ""]
    lines += [
        "d_z: the mean paired difference over its SD. p (Holm, 50): adjusted over the whole "
        "family. For test accuracy the seeds × test examples interval is the API's "
        "(`bootstrap=true`), and TOST p tests |Δ| < 0.02 (statsmodels' `ttost_paired`).",
        "",
        "## The seeds' claims, checked",
        "",
        *claims(rows, arms, BASELINE, len(FAMILY_ARMS), extra),
        "",
        "## Figures",
        "",
        f"![dead units and zeros per layer]({units_figure(arms, out)})",
        "",
        "Dead units and zeros per layer and arm (mean, 95% CI over seeds). The report's "
        "figures: [validation accuracy by arm](noisy-relu-report-arms-val-acc.png), "
        "[validation accuracy curves](noisy-relu-report-curves-val-acc.png).",
        "",
    ]
    (out / "noisy-relu.md").write_text("\n".join(lines))
    print(f"wrote {out / 'noisy-relu.md'} ({waited_s / 60:.0f} minutes)")
