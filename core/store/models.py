"""Tables. Schemas for the HTTP layer live apart, in each feature's schemas.py."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names identical on every backend, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT autoincrement is not a rowid alias on SQLite; INTEGER there keeps autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Status(str, Enum):
    queued = "queued"
    running = "running"
    cancelling = "cancelling"
    # An adaptive sweep's member at a rung, holding no worker until the sweep decides
    # (core/search.py): promoted (queued again, resuming) or pruned.
    paused = "paused"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    pruned = "pruned"


TERMINAL = frozenset({Status.succeeded, Status.failed, Status.cancelled, Status.pruned})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    """A sortable id: milliseconds since the epoch then randomness (newest sorts last)."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on Postgres; SQLite drops the zone, so values are read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[str | None] = mapped_column(String(40), index=True)
    sweep_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # A sweep experiment's grid point, its label (the arm) and its seed.
    sweep_point: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sweep_arm: Mapped[str | None] = mapped_column(Text)
    sweep_seed: Mapped[int | None] = mapped_column(Integer)
    # Members of one pack train together in one worker process (see docs/packing.md).
    pack_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # A fork (docs/forks.md): the experiment it started from, and how: {parent_id, at_step,
    # overrides (the dotted paths it changed), noise_clock, checkpoint (relative to the
    # checkpoint directory)}. Its metrics before at_step are read from the parent's rows.
    parent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    fork: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # An adaptive sweep's member (core/search.py): the rung it trains towards, and the step
    # at which it pauses there (None: it trains to the end).
    rung: Mapped[int | None] = mapped_column(Integer)
    rung_step: Mapped[int | None] = mapped_column(Integer)
    activation: Mapped[str] = mapped_column(String(64), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(32))
    status_message: Mapped[str | None] = mapped_column(Text)
    progress_epoch: Mapped[int] = mapped_column(Integer, default=0)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Which test examples the final model got right (core/examples.py): what a comparison's
    # bootstrap over seeds x test examples resamples. None for runs from before it was kept.
    examples: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts made before the last user retry: max_attempts counts from there.
    attempts_at_retry: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Fencing: each claim increments the token; every worker write must present it.
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    # Scheduling (core/scheduling): the spec's priority, the run's memory estimate and its
    # workload (dataset/model, whose measured speed gives the ETA), and a preemption request
    # the worker's heartbeat reads.
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    workload: Mapped[str | None] = mapped_column(String(200))
    preempt_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def progress(self) -> dict[str, int | None]:
        """`{epoch, step, total}`: how far the current (or last) attempt got."""
        return {
            "epoch": self.progress_epoch,
            "step": self.progress_step,
            "total": self.progress_total,
        }


class ExperimentTag(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Metric(Base):
    __tablename__ = "metrics"
    # The unique constraints double as the indexes behind every series query: by step for
    # whole reads, by seq (the point's 0-based position by step) for downsampled ones.
    __table_args__ = (
        UniqueConstraint("experiment_id", "name", "step", name="uq_metrics_key"),
        UniqueConstraint("experiment_id", "name", "seq", name="uq_metrics_seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    step: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)


class MetricSeries(Base):
    """One row per (experiment, name): how many points it has and its last step."""

    __tablename__ = "metric_series"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last_step: Mapped[int] = mapped_column(Integer)


class MetricRollup(Base):
    """Each complete aligned block's lowest and highest point (see core/store/rollup.py)."""

    __tablename__ = "metric_rollups"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    node: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    min_seq: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float] = mapped_column(Float)
    max_seq: Mapped[int] = mapped_column(Integer)
    max_value: Mapped[float] = mapped_column(Float)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_experiment_id_id", "experiment_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # status | log | checkpoint | attempt
    status: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[str | None] = mapped_column(String(40), index=True)
    base_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    grid: Mapped[dict[str, Any]] = mapped_column(JSON)  # dotted path -> list of values
    seeds: Mapped[list[int]] = mapped_column(JSON)
    metric: Mapped[str] = mapped_column(String(128))
    baseline: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a grid point
    packing: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"max_members": K} or None
    # A fork sweep's start: {experiment_id | sweep_id, at_step, noise_clock[, skipped]}.
    fork: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # An adaptive sweep's search (core/search.py): {kind, metric, mode, reduction_factor,
    # min_resource, unit}; an Optuna search's also holds the trials asked so far
    # (core/trials.py) and `stopped` once the sweep was cancelled.
    search: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Arm label -> the name a report prints for it (`NoisyReLU sigma=0.3, cosine`); others
    # are named from their points (actlab/report.py).
    labels: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def n_trials(self) -> int | None:
        """An Optuna search's trials: planned, or asked once it was stopped (None otherwise)."""
        search = self.search or {}
        if search.get("kind") != "optuna":
            return None
        return len(search.get("trials", [])) if search.get("stopped") else int(search["n_trials"])

    @property
    def trials_left(self) -> int:
        """An Optuna search's trials not asked yet (0 for any other sweep, or once stopped)."""
        search = self.search or {}
        if search.get("kind") != "optuna" or search.get("stopped"):
            return 0
        return max(0, int(search["n_trials"]) - len(search.get("trials", [])))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Owner(Base):
    """An owner's scheduling knobs (set with `actlab keys`); an owner without a row has the
    defaults. "" is the owner of work submitted with auth off."""

    __tablename__ = "owners"

    owner: Mapped[str] = mapped_column(String(40), primary_key=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    max_running: Mapped[int | None] = mapped_column(Integer)
    max_priority: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Attempt(Base):
    """One claimed attempt's worker time: the fair-share ledger. `share` is the attempt's
    part of its worker (1/K for a member of a pack of K), so an owner is charged the worker
    time it held, whatever the packing."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_experiment_id_token", "experiment_id", "token"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    owner: Mapped[str] = mapped_column(String(40), index=True)
    worker: Mapped[str] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float, default=1.0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class Worker(Base):
    """A worker process and what it has; it renews `seen_at` while it lives."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    device: Mapped[str] = mapped_column(String(64))
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key", name="uq_idempotency_keys_owner_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40))  # "" when auth is off
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
