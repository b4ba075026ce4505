"""The migrations build exactly the schema the models describe, on this backend."""

from __future__ import annotations

from alembic import command

from service.store.migrate import alembic_config


def test_models_and_migrations_agree(database_url: str) -> None:
    # Raises if autogenerate would find anything to add, drop or alter.
    command.check(alembic_config(database_url))
