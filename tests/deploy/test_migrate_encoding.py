"""`actlab db upgrade` refuses a Postgres database that is not UTF8, saying why.

A SQL_ASCII database (initdb under the C locale, e.g. a Postgres image without a UTF-8
locale) makes the driver return bytes, and SQLAlchemy failed deep inside its first connect
with a TypeError. Runs on the suite's Postgres (ACTLAB_TEST_DATABASE_URL); skipped on SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text

from core.store.migrate import DatabaseEncodingError, check_encoding, upgrade
from tests.support import ROOT, configured_database_url

pytestmark = pytest.mark.backend


@pytest.fixture
def sql_ascii_database() -> Iterator[str]:
    """A new, empty SQL_ASCII database on the test server, dropped afterwards."""
    server = configured_database_url() or ""
    if not server.startswith("postgresql"):
        pytest.skip("needs Postgres: set ACTLAB_TEST_DATABASE_URL=postgresql+psycopg://...")
    name = f"actlab_ascii_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' "
                "LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
        )
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def test_upgrade_names_the_encoding_and_the_fix(sql_ascii_database: str) -> None:
    with pytest.raises(DatabaseEncodingError, match=r"has encoding SQL_ASCII; actlab needs UTF8"):
        upgrade(sql_ascii_database)


def test_cli_exits_2_with_the_message_and_no_traceback(sql_ascii_database: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(ACTLAB_DATABASE_URL=sql_ascii_database, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "actlab", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "SQL_ASCII" in done.stderr and "CREATE DATABASE" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_suite_database_is_accepted() -> None:
    url = configured_database_url()
    if not url or not url.startswith("postgresql"):
        pytest.skip("SQLite has no server encoding to check: this says something on Postgres only")
    check_encoding(url)  # the suite's Postgres is UTF8
