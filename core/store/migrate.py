"""Apply Alembic migrations programmatically (`actlab db upgrade`, `actlab up`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseEncodingError(RuntimeError):
    """The database's encoding is not UTF8 (e.g. SQL_ASCII): it cannot hold actlab's text."""


def check_encoding(url: str) -> None:
    """Refuse a Postgres database that is not UTF8, before SQLAlchemy trips over it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    # A bare DBAPI connection: SQLAlchemy's first connect already fails on SQL_ASCII
    # (the driver returns bytes, not text).
    engine = create_engine(parsed)
    cargs, cparams = engine.dialect.create_connect_args(parsed)
    raw = engine.dialect.connect(*cargs, **cparams)
    try:
        cursor = raw.cursor()
        cursor.execute("SHOW server_encoding")
        row = cursor.fetchone()
    finally:
        raw.close()
        engine.dispose()
    value = row[0] if row else ""
    encoding = value.decode() if isinstance(value, bytes) else str(value)
    if encoding.upper() not in ("UTF8", "UTF-8"):
        raise DatabaseEncodingError(
            f"database {parsed.database!r} on {parsed.host or 'localhost'} has encoding "
            f"{encoding}; actlab needs UTF8. Create it with UTF8, e.g. CREATE DATABASE "
            f"{parsed.database} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' "
            "TEMPLATE template0 (Docker's postgres image: initialise an empty volume with a "
            "UTF-8 locale or POSTGRES_INITDB_ARGS=--encoding=UTF8)"
        )


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser treats % as interpolation; URLs may hold escaped characters.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`."""
    check_encoding(url)
    command.upgrade(alembic_config(url), revision)
