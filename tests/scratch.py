"""Throwaway databases for tests and benchmarks: a SQLite file, or a fresh Postgres schema.

A Postgres scratch database is a new schema on the given server, selected through the
URL's `options=-csearch_path=...`, so every process handed the URL sees only that schema.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.store.migrate import upgrade


def _admin(url: str, statement: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def scratch_database(
    base_url: str | None, directory: Path, *, prefix: str = "t", migrate: bool = True
) -> str:
    """A new empty database: a SQLite file in `directory`, or a schema on `base_url`."""
    if not base_url:
        url = f"sqlite:///{directory / 'actlab.db'}"
    else:
        schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
        _admin(base_url, f'CREATE SCHEMA "{schema}"')
        parsed = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        url = parsed.render_as_string(hide_password=False)
    if migrate:
        upgrade(url)
    return url


def drop_scratch(url: str) -> None:
    """Drop a scratch schema made by `scratch_database` (a SQLite file is left to its dir)."""
    if url.startswith("sqlite"):
        return
    parsed = make_url(url)
    schema = str(parsed.query["options"]).split("=", 1)[1]
    base = parsed.difference_update_query(["options"]).render_as_string(hide_password=False)
    _admin(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
