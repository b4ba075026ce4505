"""Grouping a sweep's experiments into packs (the packable set is core.spec.packing)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from core.spec.packing import pack_key
from core.store.models import Experiment, new_id


def groups(rows: Sequence[Experiment], *, max_members: int) -> list[list[Experiment]]:
    """Packs of at most `max_members` experiments that may train together, in sweep order;
    experiments that cannot pack, or that would be alone in a pack, are left out."""
    by_key: dict[str, list[Experiment]] = defaultdict(list)
    for row in rows:
        key = pack_key(row.spec)
        if key is not None:
            if row.fork:  # forks pack when they start at one step on one noise clock
                key += f"|fork@{row.fork['at_step']}:{row.fork['noise_clock']}"
            by_key[key].append(row)
    out = []
    for members in by_key.values():
        for start in range(0, len(members), max_members):
            chunk = members[start : start + max_members]
            if len(chunk) > 1:
                out.append(chunk)
    return out


def assign_packs(session: Session, rows: Sequence[Experiment], *, max_members: int) -> None:
    """Give each pack of the sweep its id; the request commits."""
    for chunk in groups(rows, max_members=max_members):
        pack_id = new_id("pack")
        for row in chunk:
            row.pack_id = pack_id
    session.flush()
