"""Keyset pagination, newest first: one helper for every list the API pages through."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from core.store.models import Experiment, Sweep

Row = TypeVar("Row", Experiment, Sweep)


def newest_first(
    session: Session, query: Select[Row], *, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    """One page of `query`'s rows by descending id, and the cursor of the next (None on the
    last page). `cursor` is the last id of the previous page; ids sort by creation time.

    One row more than `limit` is read, so a full last page is not followed by an empty one.
    """
    model = query.column_descriptions[0]["entity"]
    query = query.order_by(model.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(model.id < cursor)
    rows = list(session.scalars(query))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None
