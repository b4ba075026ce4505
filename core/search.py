"""Adaptive sweeps: successive halving and ASHA whose promoted members resume (docs/search.md).

A member of a search sweep trains to its rung's step and pauses there with its checkpoint
(status `paused`: it holds no worker). The sweep then decides, from the database alone:
the best 1/eta of the arms that reached a rung are promoted (queued again, they resume from
their checkpoints: no step is trained twice) and the rest end as `pruned`, their metrics
kept. An arm is a grid point: its seeds are ranked together, by the mean of the metric over
them at the rung, so that a lucky seed does not promote an arm.

- `successive_halving` decides a rung once every member bound for it has paused there (or
  ended); the arms not promoted are pruned at once.
- `asha` (asynchronous) promotes an arm as soon as it is in the top 1/eta of the arms that
  have reached the rung so far; the paused arms left when nothing else can run are pruned.

`decide` runs where a member pauses (the worker, right after it writes `paused`) and on the
reaper's timer, so a worker that dies between the two loses nothing; every transition is a
guarded UPDATE under the sweep's row lock, so running it twice, or on two hosts at once,
changes nothing more.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import trials
from core.rungs import Rung, first_pause, halving, rungs
from core.spec.points import canonical
from core.store import metrics
from core.store.experiments import add_event
from core.store.models import Experiment, Status, Sweep, new_id, utcnow

__all__ = ["Rung", "decide", "first_pause", "halving", "rung_values", "rungs", "sweeps_waiting"]

PENDING = (Status.queued.value, Status.running.value, Status.cancelling.value)


def decide(session: Session, sweep_id: str) -> list[str]:
    """Promote and prune what the sweep's rungs allow now; the ids promoted (to be sent to
    the workers once committed). Idempotent."""
    if not session.scalar(select(Sweep.search).where(Sweep.id == sweep_id)):
        return []  # a grid sweep: nothing to decide, and no lock taken
    sweep = session.scalars(select(Sweep).where(Sweep.id == sweep_id).with_for_update()).first()
    if sweep is None or not sweep.search:
        return []
    search = sweep.search
    members = list(
        session.scalars(
            select(Experiment).where(Experiment.sweep_id == sweep_id).order_by(Experiment.id)
        )
    )
    promoted: list[str] = []
    ladder = rungs(search, members[0].spec) if members else []
    for rung in ladder[:-1]:
        if search["kind"] == "successive_halving":
            promoted += _halve(session, search, ladder, rung, members)
        else:
            promoted += _asha(session, search, ladder, rung, members)
    if not search.get("resume", True) and promoted:  # stop-only: they train again from 0
        session.execute(
            update(Experiment)
            .where(Experiment.id.in_(promoted))
            .values(checkpoint_path=None, progress_epoch=0, progress_step=0)
            .execution_options(synchronize_session=False)
        )
    if sweep.packing and promoted:
        _repack(session, members, promoted)
    if search["kind"] == "optuna":  # the trials the sampler may start now
        promoted += trials.advance(session, sweep, members)
        search = sweep.search or search
    asked_all = sweep.trials_left == 0
    idle = not any(m.status in PENDING for m in members)
    if search["kind"] != "successive_halving" and asked_all and idle:
        for m in members:  # nothing can reach a rung any more: the waiting arms are done
            if m.status == Status.paused.value:
                _prune(session, m, f"pruned: the search ended with it waiting at rung {m.rung}")
    return promoted


def _halve(
    session: Session, search: dict[str, Any], ladder: list[Rung], rung: Rung, members: list
) -> list[str]:
    """Successive halving: decide `rung` once no member bound for it is still training; the
    best 1/eta of each group (`compare_within`; one group without it) go on."""
    bound = [m for m in members if m.rung == rung.index]
    if any(m.status in PENDING for m in bound):
        return []
    paused = [m for m in bound if m.status == Status.paused.value]
    if not paused:
        return []
    out = []
    for group in _groups(search, paused):
        ranked = _ranked_arms(session, search, rung, group)
        keep = max(1, len(ranked) // int(search["reduction_factor"]))
        winners = {arm for arm, _ in ranked[:keep]}
        for m in group:
            if m.sweep_arm in winners:
                if _promote(session, m, ladder[rung.index + 1]):
                    out.append(m.id)
            else:
                place = [arm for arm, _ in ranked].index(m.sweep_arm) + 1
                _prune(session, m, _why(search, rung, ranked, m.sweep_arm, place))
    return out


def _asha(
    session: Session, search: dict[str, Any], ladder: list[Rung], rung: Rung, members: list
) -> list[str]:
    """ASHA: promote the arms in the top 1/eta of those (of their group, with
    `compare_within`) that have reached `rung` so far."""
    by_arm: dict[str | None, list[Experiment]] = {}
    for m in members:
        by_arm.setdefault(m.sweep_arm, []).append(m)
    reached: list[Experiment] = []
    for ms in by_arm.values():
        live = [m for m in ms if m.status not in (Status.failed.value, Status.cancelled.value)]
        if live and all(_reached(m, rung) for m in live):
            reached += live
    out = []
    for group in _groups(search, reached):
        ranked = _ranked_arms(session, search, rung, group)
        keep = len(ranked) // int((halving(search) or {})["reduction_factor"])
        winners = {arm for arm, _ in ranked[:keep]}
        waiting = [m for m in group if m.rung == rung.index and m.status == Status.paused.value]
        out += [
            m.id
            for m in waiting
            if m.sweep_arm in winners and _promote(session, m, ladder[rung.index + 1])
        ]
    return out


def _repack(session: Session, members: list[Experiment], promoted: list[str]) -> None:
    """The members of a pack promoted together train on as a new pack of their own (each
    resumes from its own checkpoint; a member's step gives the same bits in a pack of any
    size, docs/packing.md). A new id, because a pack is claimed only while none of its
    members is held: an arm promoted later must not wait for its old packmates to pause."""
    new: dict[str, str] = {}
    for m in members:
        if m.id in promoted and m.pack_id is not None:
            m.pack_id = new.setdefault(m.pack_id, new_id("pack"))
            session.execute(
                update(Experiment)
                .where(Experiment.id == m.id)
                .values(pack_id=m.pack_id)
                .execution_options(synchronize_session=False)
            )


def _groups(search: dict[str, Any], members: list[Experiment]) -> list[list[Experiment]]:
    """Members grouped by their values of `compare_within` (arms that share a noise schedule,
    say, so that a rung compares them at the same noise level); one group without it."""
    within = search.get("compare_within") or []
    groups: dict[str, list[Experiment]] = {}
    for m in members:
        key = canonical([(m.sweep_point or {}).get(path) for path in within])
        groups.setdefault(key, []).append(m)
    return [groups[k] for k in sorted(groups)]


def _reached(m: Experiment, rung: Rung) -> bool:
    """Whether the member has its metric at `rung`: paused or pruned there, or past it."""
    at = m.rung or 0
    stopped = m.status in (Status.paused.value, Status.pruned.value)
    return at > rung.index or (at == rung.index and stopped)


def _ranked_arms(
    session: Session, search: dict[str, Any], rung: Rung, members: list[Experiment]
) -> list[tuple[str | None, float]]:
    """Arms, best first, by the mean over their members of the metric's last value at or
    before the rung's step (a member that never reported it counts as the worst)."""
    values = rung_values(session, [m.id for m in members], search["metric"], rung.step)
    worst = -math.inf if search["mode"] == "max" else math.inf
    arms: dict[str | None, list[float]] = {}
    for m in members:
        arms.setdefault(m.sweep_arm, []).append(values.get(m.id, worst))
    means = [(arm, sum(v) / len(v)) for arm, v in arms.items()]
    sign = -1.0 if search["mode"] == "max" else 1.0
    return sorted(means, key=lambda a: (sign * a[1], str(a[0])))


def rung_values(
    session: Session, ids: list[str], metric: str, step: int | None
) -> dict[str, float]:
    """Each experiment's last value of `metric` at or before `step`."""
    return metrics.last_values_at(session, ids, metric, step)


def _promote(session: Session, m: Experiment, to: Rung) -> bool:
    now = utcnow()
    result = session.execute(
        update(Experiment)
        .where(Experiment.id == m.id, Experiment.status == Status.paused.value)
        .where(Experiment.rung == to.index - 1)
        .values(
            status=Status.queued.value,
            status_reason=None,
            status_message=None,
            rung=to.index,
            rung_step=to.step,
            enqueued_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    m.status, m.rung, m.rung_step = Status.queued.value, to.index, to.step
    where = "to the end" if to.step is None else f"to rung {to.index} (step {to.step})"
    add_event(
        session,
        m.id,
        "status",
        f"promoted {where}: resumes from its checkpoint",
        status=Status.queued.value,
        data={"reason": "promoted", "rung": to.index},
    )
    return True


def _prune(session: Session, m: Experiment, message: str) -> None:
    result = session.execute(
        update(Experiment)
        .where(Experiment.id == m.id, Experiment.status == Status.paused.value)
        .values(
            status=Status.pruned.value,
            status_reason="pruned",
            status_message=message,
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        m.status = Status.pruned.value
        add_event(
            session,
            m.id,
            "status",
            message,
            status=Status.pruned.value,
            data={"reason": "pruned", "rung": m.rung},
        )


def _why(
    search: dict[str, Any], rung: Rung, ranked: list[tuple[str | None, float]], arm: Any, place: int
) -> str:
    mean = dict(ranked)[arm]
    return (
        f"pruned at rung {rung.index} (step {rung.step}): its arm's mean {search['metric']} "
        f"{mean:.4g} ranked {place} of {len(ranked)}"
    )


def sweeps_waiting(session: Session) -> list[str]:
    """The sweeps with a paused member, or trials left to ask (for the reaper's pass)."""
    query = select(Experiment.sweep_id).where(Experiment.status == Status.paused.value)
    paused = {s for s in session.scalars(query.distinct()) if s}
    return sorted(paused | set(trials.sweeps_to_advance(session)))
