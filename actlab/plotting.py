"""Curves as PNG figures (matplotlib and pandas, imported only here)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from actlab.errors import InputError

# Two-sided 95% t quantiles by degrees of freedom; 1.96 past the table.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def t975(df: int) -> float:
    return T975[df - 1] if 1 <= df <= len(T975) else 1.96


def _names(frame: pd.DataFrame, metric: str) -> list[str]:
    names = sorted(frame["name"].unique())
    chosen = [n for n in names if fnmatch.fnmatchcase(n, metric)]
    if not chosen:
        listed = ", ".join(names) or "no metric yet"
        raise InputError(f"no metric matches {metric!r}; the experiments have: {listed}")
    return chosen


def _band(ax: plt.Axes, curves: pd.DataFrame, label: str, per_seed: bool) -> None:
    """Mean across seeds with a 95% t band; optionally each seed thin."""
    wide = curves.pivot_table(index="step", columns="experiment", values="value")
    mean = wide.mean(axis=1)
    (line,) = ax.plot(mean.index, mean.values, label=f"{label} (n={wide.shape[1]})")
    if wide.shape[1] > 1:
        half = wide.sem(axis=1) * t975(wide.shape[1] - 1)
        ax.fill_between(mean.index, mean - half, mean + half, alpha=0.2, color=line.get_color())
    if per_seed:
        for column in wide:
            ax.plot(wide.index, wide[column], lw=0.5, alpha=0.5, color=line.get_color())


def plot(frame: pd.DataFrame, metric: str, output: Path, *, per_seed: bool = False) -> int:
    """One panel per matching metric; sweeps by arm (mean and 95% CI), else per experiment."""
    if frame.empty:
        raise InputError(f"no points of {metric!r} to plot")
    names = _names(frame, metric)
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        part = frame[frame["name"] == name]
        if part["arm"].notna().any():
            for arm, curves in part.groupby("arm", sort=True):
                _band(ax, curves, str(arm), per_seed)
        else:
            for exp, curve in part.groupby("experiment"):
                ax.plot(curve["step"], curve["value"], label=str(exp))
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return len(names)
