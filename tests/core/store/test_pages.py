"""Keyset pages, newest first: `store.pages.newest_first` serves experiments and sweeps."""

from __future__ import annotations

from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store.db import session_scope
from tests.support import canonical_spec


def test_pages_cover_every_row_once_and_a_full_last_page_ends_the_list(
    settings: Settings,
) -> None:
    spec = ExperimentSpec.model_validate(canonical_spec())
    with session_scope(settings.resolved_database_url) as session:
        made = [repo.create(session, spec=spec, owner_id=o).id for o in "aabbaa"]
    mine = sorted((i for i, o in zip(made, "aabbaa", strict=True) if o == "a"), reverse=True)
    seen, cursor, pages = [], None, 0
    with session_scope(settings.resolved_database_url) as session:
        while True:
            rows, cursor = repo.list_page(session, limit=2, cursor=cursor, owner_id="a")
            seen += [r.id for r in rows]
            pages += 1
            if cursor is None:
                break
    assert seen == mine  # newest first, only the owner's
    assert pages == 2  # 4 rows, 2 a page: no empty third page
