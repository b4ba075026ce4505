"""What `actlab plot` draws for a sweep with many arms: a line each that no other repeats,
and a legend beside the panel rather than over the curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actlab import plotting


def _frame(arms: int, seeds: int = 3, epochs: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"experiment": f"e{a}-{s}", "arm": f"arm{a}", "name": "val/acc", "epoch": e,
         "step": 10 * e, "value": 0.5 + 0.01 * a + 0.01 * rng.normal()}
        for a in range(arms) for s in range(seeds) for e in range(1, epochs + 1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures `plot` closes, kept for the test to read."""
    figures: list = []
    monkeypatch.setattr(plotting.plt, "close", figures.append)
    return figures


def test_twelve_arms_get_twelve_different_lines_and_a_legend_beside_the_panel(
    tmp_path: Path, drawn: list
) -> None:
    plotting.plot(_frame(12), "val/acc", tmp_path / "c.png")
    (ax,) = drawn[0].axes
    means = [line for line in ax.get_lines() if line.get_label().startswith("arm")]
    assert len(means) == 12
    looks = {(line.get_color(), line.get_linestyle()) for line in means}
    assert len(looks) == 12  # matplotlib's own cycle gave arm 11 arm 1's colour
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # beside the panel, not over the curves


def test_a_few_arms_keep_the_legend_inside_and_solid_lines(tmp_path: Path, drawn: list) -> None:
    plotting.plot(_frame(3), "val/acc", tmp_path / "c.png")
    (ax,) = drawn[0].axes
    means = [line for line in ax.get_lines() if line.get_label().startswith("arm")]
    assert {line.get_linestyle() for line in means} == {"-"}
    legend = ax.get_legend().get_window_extent()
    assert legend.x1 <= ax.get_window_extent().x1
