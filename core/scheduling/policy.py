"""The scheduling policy, pure: which queued unit a free worker takes, and the whole queue's
order, reasons and start estimates from one simulation of that same rule.

A *unit* is what one worker claims: an experiment alone, or the queued members of a pack.
The rule, for a worker that is free now:

1. only units it may take: the owner is below its `max_running`, the run's memory estimate
   fits the worker, and (for a pack) no member is still held by another worker;
2. the highest priority first;
3. at that priority, the owner furthest below its share: the least decayed worker time per
   unit of weight (`usage / weight`); so a low-weight owner is never starved, it only waits
   until its usage per weight is the lowest;
4. within the owner, round robin between its sweeps and its single runs (the group served
   least recently goes first);
5. then submission order.

`plan` runs the rule forward in time, each worker taking its next unit when its current one
is estimated to end, and each pick charging its estimated duration to its owner's usage, so
that the order it gives is the order in which the workers would claim, if runs took their
estimated time. docs/scheduling.md explains the estimate.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Why a queued experiment waits (its `queue.reason`).
REASONS = {
    "priority": "work of a higher priority is ahead of it",
    "fair_share": "other owners further below their share of worker time go first",
    "order": "its owner's earlier work (or another of its sweeps, in turn) is ahead of it",
    "owner_limit": "its owner runs as many experiments as its key allows (max_running)",
    "resources": "its memory estimate fits no live worker",
    "pack": "another member of its pack is still running; the pack resumes together",
    "no_worker": "it is next, and every worker is busy (or none is running)",
}


@dataclass(frozen=True)
class Unit:
    """What one worker claims: one experiment, or the queued members of one pack."""

    ids: tuple[str, ...]  # the experiments, the first one the unit's head
    owner: str
    group: str  # the sweep's id; "" for the owner's single runs
    priority: int
    order: int  # submission order (smaller is earlier)
    memory_bytes: int | None = None
    seconds: float | None = None  # estimated run time; None when nothing was measured
    held: bool = False  # a pack with a member still held by a worker


@dataclass
class OwnerState:
    weight: float = 1.0
    max_running: int | None = None
    usage: float = 0.0  # decayed worker-seconds
    running: int = 0  # units running now


@dataclass(frozen=True)
class WorkerSlot:
    name: str
    memory_bytes: int | None  # None: takes any size
    busy_for: float | None = 0.0  # seconds until its current unit ends; None if unknown
    running_owner: str | None = None  # whose unit it runs now


@dataclass(frozen=True)
class Placement:
    unit: Unit
    ahead: int  # queued experiments placed before this unit
    reason: str  # a key of REASONS
    eta_seconds: float | None  # estimated start, from now


@dataclass
class _Group:
    units: list[Unit] = field(default_factory=list)  # in submission order
    served: float = -math.inf  # when the group last had a unit picked (sim time, seq)


def fits(unit: Unit, memory_bytes: int | None) -> bool:
    """Whether the unit's memory estimate fits a worker offering `memory_bytes`."""
    return memory_bytes is None or unit.memory_bytes is None or unit.memory_bytes <= memory_bytes


def decayed(start: float, end: float, now: float, half_life: float) -> float:
    """Worker-seconds of the interval [start, end] (seconds before `now`, from any origin),
    each second weighted by 2^(-age / half_life): the integral of the decay over it."""
    k = math.log(2) / half_life
    end = min(end, now)
    if end <= start:
        return 0.0
    return (math.exp(-k * (now - end)) - math.exp(-k * (now - start))) / k


class Queue:
    """The queued units by owner and group, with the rule's choice for a given worker."""

    def __init__(
        self, units: Iterable[Unit], owners: dict[str, OwnerState], *, fifo: bool = False
    ) -> None:
        self.owners, self.fifo = owners, fifo
        self.groups: dict[str, dict[str, _Group]] = defaultdict(dict)
        for unit in sorted(units, key=lambda u: u.order):
            self.owners.setdefault(unit.owner, OwnerState())
            self.groups[unit.owner].setdefault(unit.group, _Group()).units.append(unit)
        self._clock = 0

    def __bool__(self) -> bool:
        return any(g.units for by_group in self.groups.values() for g in by_group.values())

    def eligible(self, unit: Unit, memory_bytes: int | None) -> bool:
        owner = self.owners[unit.owner]
        if owner.max_running is not None and owner.running >= owner.max_running:
            return False
        if unit.held:
            return False
        return (
            memory_bytes is None or unit.memory_bytes is None or unit.memory_bytes <= memory_bytes
        )

    def pick(self, memory_bytes: int | None) -> Unit | None:
        """The unit a worker with `memory_bytes` takes next (removed from the queue)."""
        best: tuple[tuple[float, ...], str, str, int] | None = None
        for owner_name, by_group in self.groups.items():
            owner = self.owners[owner_name]
            share = owner.usage / owner.weight
            for group_name, group in by_group.items():
                # The group's candidate: its eligible unit of the highest priority, the
                # earliest of those (units are in submission order).
                found = [
                    (-u.priority, i)
                    for i, u in enumerate(group.units)
                    if self.eligible(u, memory_bytes)
                ]
                if not found:
                    continue
                i = min(found)[1] if not self.fifo else found[0][1]
                unit = group.units[i]
                key: tuple[float, ...] = (
                    (unit.order,)
                    if self.fifo
                    else (-unit.priority, share, group.served, unit.order)
                )
                if best is None or key < best[0]:
                    best = (key, owner_name, group_name, i)
        if best is None:
            return None
        _, owner_name, group_name, i = best
        group = self.groups[owner_name][group_name]
        unit = group.units.pop(i)
        self._clock += 1
        group.served = self._clock
        return unit

    def remaining(self) -> list[Unit]:
        return [u for by_group in self.groups.values() for g in by_group.values() for u in g.units]


def plan(
    units: Sequence[Unit],
    owners: dict[str, OwnerState],
    workers: Sequence[WorkerSlot],
    *,
    default_seconds: float | None = None,
    fifo: bool = False,
    max_steps: int = 100_000,
) -> list[Placement]:
    """Every queued unit's place, reason and estimated start, in the order the workers would
    take them; units no worker can take (now or after the simulated runs end) come last.

    `owners` is copied, not changed. A unit without an estimate takes `default_seconds`;
    when that is None too, the estimates after it are unknown (None).
    """
    owners = {name: OwnerState(**vars(state)) for name, state in owners.items()}
    queue = Queue(units, owners, fifo=fifo)
    now_running = {name: state.running for name, state in owners.items()}
    ends: list[tuple[float, int, str]] = []  # (end time, seq, owner) of simulated runs
    free: list[tuple[float, int, WorkerSlot]] = []  # (free at, seq, worker)
    unknown_from: set[str] = set()  # workers whose timeline holds an unknown duration
    for i, w in enumerate(workers):
        if w.busy_for is None:
            unknown_from.add(w.name)
        heapq.heappush(free, (w.busy_for or 0.0, i, w))
        if w.running_owner is not None:
            heapq.heappush(ends, (w.busy_for or 0.0, -i - 1, w.running_owner))
    placed: list[tuple[Unit, float | None]] = []
    seq = len(workers)
    for _ in range(max_steps):
        if not queue or not free:
            break
        t, _, worker = heapq.heappop(free)
        while ends and ends[0][0] <= t:  # runs that ended by now release their owner
            _, _, owner = heapq.heappop(ends)
            owners[owner].running = max(0, owners[owner].running - 1)
        unit = queue.pick(worker.memory_bytes)
        if unit is None:
            later = [e for e, _, _ in ends if e > t]
            if later:  # try again when the next run ends and frees its owner
                heapq.heappush(free, (min(later), seq, worker))
                seq += 1
            continue
        seconds = unit.seconds if unit.seconds is not None else default_seconds
        known = worker.name not in unknown_from
        placed.append((unit, t if known else None))
        if seconds is None:
            unknown_from.add(worker.name)
            seconds = 0.0
        state = owners[unit.owner]
        state.usage += seconds
        state.running += 1
        heapq.heappush(ends, (t + seconds, seq, unit.owner))
        heapq.heappush(free, (t + seconds, seq, worker))
        seq += 1
    # Reasons are about now: the state before the simulation.
    start = {name: OwnerState(**vars(s)) for name, s in owners.items()}
    for name, running in now_running.items():
        start[name].running = running
    live = list(workers)
    out: list[Placement] = []
    ahead = 0
    seen_priority: int | None = None
    seen_owners: set[str] = set()
    for unit, eta in placed:
        reason = _reason(unit, start, live, ahead, seen_priority, seen_owners)
        out.append(Placement(unit, ahead, reason, eta))
        ahead += len(unit.ids)
        seen_priority = (
            unit.priority if seen_priority is None else max(seen_priority, unit.priority)
        )
        seen_owners.add(unit.owner)
    for unit in sorted(queue.remaining(), key=lambda u: u.order):
        reason = _reason(unit, start, live, ahead, seen_priority, seen_owners)
        out.append(Placement(unit, ahead, reason, None))
        ahead += len(unit.ids)
    return out


def _reason(
    unit: Unit,
    owners: dict[str, OwnerState],
    workers: Sequence[WorkerSlot],
    ahead: int,
    top_priority: int | None,
    owners_ahead: set[str],
) -> str:
    if not workers:
        return "no_worker"
    sizes = [w.memory_bytes for w in workers]
    if unit.memory_bytes is not None and all(
        s is not None and unit.memory_bytes > s for s in sizes
    ):
        return "resources"
    owner = owners[unit.owner]
    if owner.max_running is not None and owner.running >= owner.max_running:
        return "owner_limit"
    if unit.held:
        return "pack"
    if top_priority is not None and top_priority > unit.priority:
        return "priority"
    if owners_ahead - {unit.owner}:
        return "fair_share"
    if ahead:
        return "order"
    return "no_worker"
