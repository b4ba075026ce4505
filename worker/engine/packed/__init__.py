"""Packed training: a sweep's small models trained together as one stacked model.

`train_pack` takes the members (each what `engine.train` takes) and returns each member's
outcome: its `TrainResult`, or the `TrainingError` it left the pack with.
"""

from __future__ import annotations

from pathlib import Path

from worker.engine.errors import TrainingError
from worker.engine.packed.member import MemberTrainer, Outcome, PackMember
from worker.engine.packed.rules import stack_reason, unpackable_reason
from worker.engine.packed.trainer import OnLeave, PackedTrainer

__all__ = ["Outcome", "PackMember", "train_pack", "unpackable_reason"]


def train_pack(
    members: list[PackMember], *, data_dir: Path, on_outcome: OnLeave | None = None
) -> list[Outcome]:
    """Train `members` packed; members at different loop positions (say, resumed from
    checkpoints of different steps) or that cannot stack train as packs of their own.

    `on_outcome(i, outcome)` is called as soon as member `i` ends, while the others go on.
    """
    trainers = [MemberTrainer(m, Path(data_dir)) for m in members]
    outcomes: dict[int, Outcome] = {}

    def report(i: int, outcome: Outcome) -> None:
        outcomes[i] = outcome
        if on_outcome is not None:
            on_outcome(i, outcome)

    for group in _groups(trainers):
        if len(group) == 1 and stack_reason(trainers[group[0]].run) is not None:
            report(group[0], _alone(trainers[group[0]]))
            continue
        members_of = [trainers[i] for i in group]
        PackedTrainer(members_of, lambda k, o, g=group: report(g[k], o)).fit()  # type: ignore[misc]
    return [outcomes[i] for i in range(len(members))]


def _groups(trainers: list[MemberTrainer]) -> list[list[int]]:
    """Indices of members that can step together: same loop position, stackable runs."""
    groups: list[list[int]] = []
    for i, t in enumerate(trainers):
        for group in groups:
            lead = trainers[group[0]]
            if t.loop.step == lead.loop.step and unpackable_reason(lead.run, t.run) is None:
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _alone(trainer: MemberTrainer) -> Outcome:
    """A member that cannot stack trains as it would unpacked."""
    try:
        return trainer.fit(resumed=trainer.resumed)
    except TrainingError as exc:
        return exc
