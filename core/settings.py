"""One settings class for every process (API, worker, CLI), read from ACTLAB_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev"}


class Settings(BaseSettings):
    """Every setting of actlab; README.md documents each one."""

    model_config = SettingsConfigDict(env_prefix="ACTLAB_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(Path.home() / ".actlab", description="Data sets, SQLite file, Redis.")
    database_url: str | None = Field(None, description="Default: SQLite file in data_dir.")
    broker_url: str | None = Field(None, description="Default: embedded Redis socket in data_dir.")
    checkpoint_dir: Path | None = Field(None, description="Default: data_dir/checkpoints.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    queue: str = Field("actlab", description="Celery queue the API sends to and workers read.")

    # Execution: a worker's lease on a running experiment, renewed by heartbeats.
    lease_seconds: float = Field(60.0, gt=0)
    heartbeat_seconds: float = Field(10.0, gt=0)
    visibility_timeout_seconds: int = Field(3600, gt=0)
    max_attempts: int = Field(3, ge=1)
    reaper_interval_seconds: float = Field(15.0, gt=0)
    queued_grace_seconds: float = Field(300.0, gt=0, description="Re-send queued after this.")

    # Scheduling (docs/scheduling.md): what a free worker claims next, and preemption.
    scheduler: Literal["fair", "fifo"] = Field(
        "fair", description="fair: priority, fair share, round robin; fifo: submission order."
    )
    fair_share_half_life_seconds: float = Field(
        6 * 3600.0, gt=0, description="Past worker time counts half after this long."
    )
    preempt_grace_seconds: float = Field(
        300.0, ge=0, description="A run that started this recently is not preempted."
    )
    worker_memory_bytes: int | None = Field(
        None, ge=2**20, description="What a worker offers; default: its GPU's or RAM's size."
    )

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field("text", description="json: one object a line.")

    # A shared box: API keys on by default; `actlab up` (one researcher's laptop) turns them off.
    auth_enabled: bool = True
    idempotency_ttl_seconds: int = Field(86_400, gt=0, description="How long keys are remembered.")

    # Limits: each rejection names the setting that raises it.
    max_epochs: int = Field(10_000, ge=1)
    max_steps: int = Field(10_000_000, ge=1)
    max_model_parameters: int = Field(50_000_000, ge=1)
    max_sweep_size: int = Field(500, ge=1)
    max_queued_per_owner: int = Field(1_000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    # What one worker may need for a run (data, model, optimizer, a batch): a third of a
    # shared 24 GiB box, so a few workers and the system fit beside it.
    max_memory_bytes: int = Field(8 * 2**30, ge=2**20)
    # The disk one run's kept checkpoints may take (training.keep_checkpoints; forks start
    # from them): a spec that would keep more is refused at submit.
    max_kept_bytes: int = Field(20 * 2**30, ge=2**20)
    # Live streams (SSE), per API process: a 429 past a cap; a stream longer than
    # stream_max_seconds ends without `end` and the client reconnects with Last-Event-ID.
    max_streams_total: int = Field(2_000, ge=1)
    max_streams_per_owner: int = Field(100, ge=1)
    stream_max_seconds: float = Field(3600.0, gt=0)
    stream_recheck_seconds: float = Field(30.0, gt=0, description="Re-read the db when quiet.")
    # A stream this many channel messages behind (its client reads too slowly) is closed;
    # the client reconnects with its Last-Event-ID and catches up from the database.
    stream_queue_messages: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _lease_fits(self) -> Settings:
        # A broker redelivering while a lease is alive would start duplicate work.
        if self.visibility_timeout_seconds <= self.lease_seconds:
            raise ValueError("visibility_timeout_seconds must exceed lease_seconds")
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        return self

    @model_validator(mode="after")
    def _no_placeholder_passwords(self) -> Settings:
        if self.environment == "production":
            for name in ("database_url", "broker_url"):
                password = _password(getattr(self, name))
                if password is not None and password.lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(
                        f"{name} carries the placeholder password {password!r}: set a real "
                        "one (e.g. `openssl rand -hex 24`) in .env, or environment=development"
                    )
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'actlab.db'}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url is None

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"redis+socket://{self.redis_socket}"

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.data_dir / "checkpoints"

    def ensure_dirs(self) -> None:
        """Create the data and checkpoint directories (the server's verbs do, first)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.resolved_checkpoint_dir.mkdir(parents=True, exist_ok=True)


def _password(url: str | None) -> str | None:
    """The password part of a URL, None when it has none."""
    return None if not url else urlsplit(url).password


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings()
