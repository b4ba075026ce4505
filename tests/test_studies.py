"""The study scripts' own statistics (docs/studies/report.py), against statsmodels."""

from __future__ import annotations

import importlib.util
import math

import pytest
from statsmodels.stats.multitest import multipletests

from tests.support import ROOT


def _report():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("report", ROOT / "docs/studies/report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_holm_leaves_a_missing_p_value_out_of_the_family() -> None:
    got = _report().holm([0.01, math.nan, 0.04, 0.03])
    assert math.isnan(got[1])
    ref = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    assert [got[0], got[2], got[3]] == pytest.approx(list(ref), abs=1e-12)


def test_the_gap_is_of_eval_mode_figures_and_refuses_an_old_runs_noisy_train_acc() -> None:
    gap = _report().generalisation_gap
    new = {"train/acc": 0.9, "train_running/acc": 0.7, "test/acc": 0.6, "val/acc": 0.65}
    assert gap(new) == pytest.approx(0.3) and gap(new, "val/acc") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="biased"):
        gap({"train/acc": 0.7, "test/acc": 0.6})  # train/acc then was the noisy running mean


def test_the_studys_family_is_paired_by_seed_and_holm_corrected_as_one() -> None:
    """Every (arm, outcome) against the baseline over the seeds both have, one Holm over
    all of them; an arm equal to the baseline on every seed has no test (NaN), not p = 0."""
    import numpy as np
    from scipy import stats

    report = _report()
    rng = np.random.default_rng(0)
    keys = [key for key, _, _ in report.OUTCOMES]
    arms = {
        name: {
            seed: {k: float(rng.normal(0.5 + 0.01 * i, 0.02)) for k in keys} for seed in range(6)
        }
        for i, name in enumerate(["base", "a", "b"])
    }
    arms["same"] = {s: dict(v) for s, v in arms["base"].items()}
    del arms["b"][5]  # an unpaired seed is left out of b's tests
    rows = report.family(arms, ["a", "b", "same"], "base")
    assert len(rows) == 3 * len(keys)
    for row in rows:
        seeds = sorted(set(arms[row["arm"]]) & set(arms["base"]))
        assert row["n"] == len(seeds)
        a = [arms[row["arm"]][s][row["key"]] for s in seeds]
        b = [arms["base"][s][row["key"]] for s in seeds]
        if row["arm"] == "same":
            assert math.isnan(row["p"]) and math.isnan(row["p_holm"])
        else:
            assert row["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, abs=1e-12)
    tested = [r for r in rows if r["arm"] != "same"]
    ref = multipletests([r["p"] for r in tested], method="holm")[1]
    assert [r["p_holm"] for r in tested] == pytest.approx(list(ref), abs=1e-12)
