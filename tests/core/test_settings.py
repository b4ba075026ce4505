"""Settings refuse combinations that would misbehave: lease timing, placeholder secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_visibility_timeout_must_outlast_the_lease() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout_seconds must exceed"):
        Settings(lease_seconds=60, visibility_timeout_seconds=60)
    with pytest.raises(ValidationError, match="heartbeat_seconds must be shorter"):
        Settings(lease_seconds=10, heartbeat_seconds=10)


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("database_url", "postgresql+psycopg://actlab:change-me@postgres:5432/actlab"),
        ("broker_url", "redis://:CHANGEME@redis:6379/0"),
        ("broker_url", "redis://:@redis:6379/0"),
    ],
)
def test_production_refuses_placeholder_passwords(field: str, url: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} carries the placeholder password"):
        Settings(environment="production", **{field: url})
    assert getattr(Settings(environment="development", **{field: url}), field) == url


def test_production_accepts_real_and_absent_passwords() -> None:
    settings = Settings(
        environment="production",
        database_url="postgresql+psycopg://actlab:3f9c1e7a@postgres:5432/actlab",
        broker_url="redis://127.0.0.1:6379/0",  # a local Redis without auth
    )
    assert settings.environment == "production"
