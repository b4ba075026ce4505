"""A fork sweep's rung ladder (core/rungs.py): its rungs count from the fork's step, and
`compare_after` measures the steps after the fork when the fork restarts the noise schedule
(tests/e2e/test_search.py trains one with a real worker)."""

from __future__ import annotations

from typing import Any

import pytest

from core.rungs import compare_from_step, first_pause, rungs
from tests.support import canonical_spec

# The canonical spec: 20 epochs of 36 steps (720), forked at its midpoint.
SPEC = canonical_spec()
AT = 360


def _search(**over: Any) -> dict[str, Any]:
    base = {"kind": "successive_halving", "reduction_factor": 3, "min_resource": 1}
    return {**base, "unit": "epochs", **over}


def _ladder(search: dict[str, Any], spec: dict[str, Any] = SPEC) -> list[tuple]:
    return [(r.index, r.resource, r.step) for r in rungs(search, spec)]


def test_a_forks_rungs_count_epochs_from_its_fork_step() -> None:
    # 10 epochs left after step 360: rungs 1, 3 and 9 epochs after it, then the end.
    assert _ladder(_search(start_step=AT)) == [(0, 1, 396), (1, 3, 468), (2, 9, 684), (3, 10, None)]
    assert first_pause(_search(start_step=AT), SPEC) == 396
    # Without a fork, as before: from step 0, over the 20 epochs.
    assert _ladder(_search()) == [(0, 1, 36), (1, 3, 108), (2, 9, 324), (3, 20, None)]


def test_a_forks_rungs_count_steps_from_its_fork_step() -> None:
    search = _search(start_step=AT, unit="steps", min_resource=50)
    assert _ladder(search) == [(0, 50, 410), (1, 150, 510), (2, 360, None)]


def test_a_fork_mid_epoch_counts_whole_epochs_after_it() -> None:
    # 620 steps left after step 100: 18 epochs (the last one partial) in the end's resource.
    assert _ladder(_search(start_step=100)) == [
        (0, 1, 136),
        (1, 3, 208),
        (2, 9, 424),
        (3, 18, None),
    ]


def test_no_rung_is_at_or_before_the_fork_even_when_min_resource_is_before_it() -> None:
    # Rung steps counted from step 0 would be 36, 108 and 324: all before the fork.
    assert all(r.step is None or r.step > AT for r in rungs(_search(start_step=AT), SPEC))


def test_a_fork_with_too_few_steps_left_for_a_rung_trains_to_the_end() -> None:
    assert _ladder(_search(start_step=700)) == [(0, 1, None)]  # 20 steps: under an epoch
    assert first_pause(_search(start_step=700), SPEC) is None


@pytest.mark.parametrize(("restart", "expected"), [(True, AT + 180), (False, 360)])
def test_compare_after_a_fraction_is_of_the_steps_after_a_restarted_schedule(
    restart: bool, expected: int
) -> None:
    # restart: half of the 360 steps after the fork; continue: half of the run, as without one.
    assert compare_from_step(0.5, [SPEC], start=AT, restart=restart) == expected
    kept = _ladder(_search(start_step=AT, compare_from_step=expected))
    assert kept[0][2] == (684 if restart else 396)


def test_annealed_with_a_restarted_schedule_is_measured_over_the_steps_after_the_fork() -> None:
    # 19 epochs (684 steps), so that neither clock's 5% falls exactly on a step.
    linear = {"kind": "linear", "start": 1.0, "end": 0.0}
    spec = canonical_spec(noise_schedule=linear, training={"epochs": 19})
    # Restarted at 350 over 334 steps: step s trains at t = s - 351, annealed once
    # 1 - t/334 <= 0.05, t >= 317.3, so from step 350 + 318 + 1.
    assert compare_from_step("annealed", [spec], start=350, restart=True) == 669
    # On the run's own clock (noise_clock: continue) the schedule spans the whole run:
    # 1 - t/684 <= 0.05, t >= 649.8, from step 651, as without a fork.
    assert compare_from_step("annealed", [spec], start=350, restart=False) == 651
    assert compare_from_step("annealed", [spec]) == 651
