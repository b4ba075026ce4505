"""Curves as PNG figures (matplotlib and pandas, imported only here)."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from actlab.errors import InputError

FORMATS = ("png", "pdf", "svg")
SPARSE = 12  # a series with at most this many points is drawn with markers
INSIDE_LEGEND = 6  # more entries than this: the legend goes beside the panel, not over it
# Ten colours, then the same ten dashed, dotted and dash-dotted: 40 arms before a line
# repeats (matplotlib's default cycle repeats after ten, so arm 11 looked like arm 1).
LINE_STYLES = ["-", "--", ":", "-."]


def _cycle() -> Any:
    from cycler import cycler

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return cycler(linestyle=LINE_STYLES) * cycler(color=colors)


def t975(df: int) -> float:
    """The two-sided 95% t quantile (scipy's) for `df` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def _names(frame: pd.DataFrame, metric: str) -> list[str]:
    names = sorted(frame["name"].unique())
    chosen = [n for n in names if fnmatch.fnmatchcase(n, metric)]
    if not chosen:
        listed = ", ".join(names) or "no metric yet"
        raise InputError(f"no metric matches {metric!r}; the experiments have: {listed}")
    return chosen


def _band(ax: plt.Axes, curves: pd.DataFrame, label: str, per_seed: bool, x: str) -> None:
    """Mean across seeds with a 95% t band whose quantile is that of the seeds present at
    each x (a seed that stopped early, or a pruned arm, narrows n there); markers where the
    series is sparse (a diagnostic every few epochs is a few points, not a line)."""
    wide = curves.pivot_table(index=x, columns="experiment", values="value")
    mean = wide.mean(axis=1)
    n = wide.notna().sum(axis=1)
    marker = "o" if len(mean) <= SPARSE else None
    (line,) = ax.plot(
        mean.index, mean.values, marker=marker, ms=4, label=f"{label} (n={wide.shape[1]})"
    )  # colour and line style from the axes' cycle (_cycle)
    if wide.shape[1] > 1:
        quantile = n.map(lambda k: t975(int(k) - 1) if k > 1 else float("nan"))
        half = wide.sem(axis=1) * quantile
        ax.fill_between(mean.index, mean - half, mean + half, alpha=0.2, color=line.get_color())
    if per_seed:
        for column in wide:
            ax.plot(wide.index, wide[column], lw=0.5, alpha=0.5, color=line.get_color())


def figure_format(output: Path, fmt: str | None) -> str:
    """png, pdf or svg: as given, else from the file's suffix (else png)."""
    chosen = fmt or output.suffix.lstrip(".").lower() or "png"
    if chosen not in FORMATS:
        raise InputError(f"format {chosen!r}: use one of {', '.join(FORMATS)}")
    return chosen


def plot(
    frame: pd.DataFrame,
    metric: str,
    output: Path,
    *,
    per_seed: bool = False,
    x: str = "epoch",
    size: tuple[float, float] = (6.0, 4.0),
    dpi: int = 150,
    fmt: str | None = None,
    labels: dict[str, str] | None = None,
) -> int:
    """One panel per matching metric; a sweep's arms as mean and 95% CI, else one line per
    experiment. Only the arms that reported the metric are drawn; `labels` renames arms."""
    if x not in ("epoch", "step"):
        raise InputError(f"x {x!r}: use epoch or step")
    kind = figure_format(output, fmt)
    if frame.empty:
        raise InputError(f"no points of {metric!r} to plot")
    names = _names(frame, metric)
    width, height = size
    if frame["arm"].nunique() > INSIDE_LEGEND:  # room for the legend beside each panel
        width += 3.0
    fig, axes = plt.subplots(1, len(names), figsize=(width * len(names), height), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.set_prop_cycle(_cycle())
        part = frame[(frame["name"] == name) & frame["value"].notna()]
        if part["arm"].notna().any():
            for arm, curves in part.groupby("arm", sort=True):
                _band(ax, curves, (labels or {}).get(str(arm), str(arm)), per_seed, x)
        else:
            for exp, curve in part.groupby("experiment"):
                marker = "o" if len(curve) <= SPARSE else None
                ax.plot(curve[x], curve["value"], marker=marker, ms=4, label=str(exp))
        ax.set_title(name)
        ax.set_xlabel(x)
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.2
        ax.grid(alpha=0.3)
        if len(ax.get_lines()) and len(ax.get_legend_handles_labels()[1]) > INSIDE_LEGEND:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(fontsize="small")
    fig.tight_layout()
    # "tight" grows the saved figure to hold a legend beside the panel.
    fig.savefig(output, dpi=dpi, format=kind, bbox_inches="tight")
    plt.close(fig)
    return len(names)


def forest(
    rows: list[tuple[str, float | None, float | None, float | None, int]],
    metric: str,
    output: Path,
    *,
    size: tuple[float, float] = (6.0, 4.0),
    dpi: int = 150,
    fmt: str | None = None,
) -> None:
    """Each arm's mean with its 95% CI as a horizontal bar (label, mean, low, high, n)."""
    kind = figure_format(output, fmt)
    shown = [r for r in rows if r[1] is not None]
    if not shown:
        raise InputError(f"no arm has a value of {metric!r} to draw")
    height = min(size[1], 0.45 * len(shown) + 1.0)  # a row per arm, not a stretched panel
    fig, ax = plt.subplots(figsize=(size[0], height))
    for i, (_, mean, low, high, _) in enumerate(shown):
        if low is not None and high is not None:
            ax.plot([low, high], [i, i], color="C0", lw=2)
        ax.plot([mean or 0.0], [i], "o", color="C0")  # None was filtered out above
    ax.set_yticks(range(len(shown)), [f"{r[0]} (n={r[4]})" for r in shown])
    ax.set_ylim(len(shown) - 0.5, -0.5)  # the first arm on top
    ax.set_xlabel(f"{metric}: mean and 95% CI over seeds")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(output, dpi=dpi, format=kind)
    plt.close(fig)
