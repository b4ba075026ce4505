"""The policy, pure: priority, fair share, round robin, limits, reasons and start estimates."""

from __future__ import annotations

import math

import pytest
from scipy import integrate

from core.scheduling.policy import OwnerState, Queue, Unit, WorkerSlot, decayed, plan


def units(
    owner: str,
    n: int,
    *,
    start: int = 0,
    group: str = "",
    priority: int = 0,
    seconds: float | None = 10.0,
    memory: int | None = None,
) -> list[Unit]:
    return [
        Unit(
            ids=(f"{owner}{group}{i}",),
            owner=owner,
            group=group,
            priority=priority,
            order=start + i,
            memory_bytes=memory,
            seconds=seconds,
        )
        for i in range(n)
    ]


def idle(n: int, memory: int | None = None) -> list[WorkerSlot]:
    return [WorkerSlot(f"w{i}", memory) for i in range(n)]


def test_decay_is_the_integral_of_the_half_life_weight() -> None:
    half = 3600.0
    for start, end in [(-7200.0, -600.0), (-100.0, 0.0), (-50_000.0, -49_000.0)]:
        expected, _ = integrate.quad(lambda t: 2 ** (t / half), start, end)
        assert decayed(start, end, 0.0, half) == pytest.approx(expected, rel=1e-9)
    assert decayed(-10.0, 5.0, 0.0, half) == pytest.approx(decayed(-10.0, 0.0, 0.0, half))


def test_priority_comes_first_then_the_owner_furthest_below_its_share() -> None:
    owners = {"a": OwnerState(usage=0.0), "b": OwnerState(usage=100.0)}
    queue = Queue([*units("a", 2), *units("b", 1, start=10, priority=5)], owners)
    assert queue.pick(None).ids == ("b0",)  # priority beats a's lower usage
    owners["b"].usage = 0.0
    queue = Queue(
        [*units("a", 2, start=5), *units("b", 2)],
        {"a": OwnerState(usage=1.0), "b": OwnerState(usage=3.0)},
    )
    assert queue.pick(None).ids == ("a0",)  # same priority: a used less
    # Weight divides usage: b with weight 4 is further below its share (3/4 < 1/1).
    queue = Queue(
        [*units("a", 2, start=5), *units("b", 2)],
        {"a": OwnerState(usage=1.0), "b": OwnerState(weight=4, usage=3.0)},
    )
    assert queue.pick(None).ids == ("b0",)


def test_round_robin_between_an_owners_sweeps_and_its_single_runs() -> None:
    queue = Queue(
        [*units("a", 3, group="s1"), *units("a", 3, start=3, group="s2"), *units("a", 2, start=6)],
        {"a": OwnerState()},
    )
    picked = [queue.pick(None).ids[0] for _ in range(8)]
    assert picked == ["as10", "as20", "a0", "as11", "as21", "a1", "as12", "as22"]


def test_fifo_is_submission_order_whatever_the_owner() -> None:
    owners = {"a": OwnerState(usage=1000.0), "b": OwnerState()}
    queue = Queue([*units("a", 3), *units("b", 1, start=3, priority=9)], owners, fifo=True)
    assert [queue.pick(None).ids[0] for _ in range(4)] == ["a0", "a1", "a2", "b0"]


def test_a_late_single_run_waits_one_run_per_worker_not_the_sweep() -> None:
    # A's 200-run sweep, then B's one run: with 2 workers B starts among the next two.
    order = plan(
        [*units("a", 200, group="s"), *units("b", 1, start=200)],
        {"a": OwnerState(usage=20.0)},
        idle(2),
    )
    assert [p.unit.ids[0] for p in order].index("b0") <= 1


@pytest.mark.parametrize("weights", [(1.0, 2.0), (1.0, 1.0), (0.1, 1.0), (3.0, 1.0)])
def test_shares_follow_the_weights_and_no_weight_starves(weights: tuple[float, float]) -> None:
    wa, wc = weights
    owners = {"a": OwnerState(weight=wa), "c": OwnerState(weight=wc)}
    placed = plan([*units("a", 400), *units("c", 400, start=400)], owners, idle(2))
    # The first 300 starts, all while both owners still have queued work.
    first = [p.unit.owner for p in placed[:300]]
    share_a = first.count("a") / len(first)
    assert share_a == pytest.approx(wa / (wa + wc), rel=0.1)
    assert "a" in first[: math.ceil((wa + wc) / wa) + 2]  # served early, not starved


def test_running_caps_resources_and_reasons() -> None:
    owners = {"a": OwnerState(max_running=1, running=1), "b": OwnerState(usage=5.0)}
    workers = [WorkerSlot("w0", 2**30, busy_for=30.0, running_owner="a"), WorkerSlot("w1", 2**30)]
    queued = [
        *units("a", 1),
        *units("b", 1, start=1, memory=2**31),  # fits no worker
        *units("b", 2, start=2, group="s"),
        *units("c", 1, start=4, priority=-1),
    ]
    placed = {p.unit.ids[0]: p for p in plan(queued, owners, workers)}
    assert placed["b0"].reason == "resources" and placed["b0"].eta_seconds is None
    assert placed["bs0"].reason == "no_worker" and placed["bs0"].eta_seconds == 0.0
    assert placed["bs1"].reason == "order" and placed["bs1"].eta_seconds == 10.0
    assert placed["a0"].reason == "owner_limit"
    assert placed["a0"].eta_seconds == 30.0  # when a's running run ends
    assert placed["c0"].reason == "priority"


def test_estimates_follow_the_workers_timelines() -> None:
    placed = plan(
        units("a", 5, seconds=10.0),
        {},
        [WorkerSlot("w0", None, busy_for=4.0), WorkerSlot("w1", None)],
    )
    assert [p.eta_seconds for p in placed] == [0.0, 4.0, 10.0, 14.0, 20.0]
    assert [p.ahead for p in placed] == [0, 1, 2, 3, 4]
    # Nothing measured: the first start on each worker is known, the rest are not.
    placed = plan(units("a", 3, seconds=None), {}, idle(2))
    assert [p.eta_seconds for p in placed] == [0.0, 0.0, None]
    assert plan(units("a", 2), {}, [])[0].reason == "no_worker"


def test_priority_counts_inside_an_owners_group_too() -> None:
    urgent = Unit(ids=("urgent",), owner="a", group="", priority=3, order=9)
    queue = Queue([*units("a", 2), urgent], {})
    assert [queue.pick(None).ids[0] for _ in range(3)] == ["urgent", "a0", "a1"]
