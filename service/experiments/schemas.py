"""HTTP schemas of experiments (tables live in service.store.models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.store.models import Experiment


class Progress(BaseModel):
    epoch: int
    step: int
    total: int | None = Field(None, description="Total optimizer steps, known once running.")


class ExperimentRead(BaseModel):
    id: str
    name: str | None
    status: str
    status_reason: str | None = Field(None, description="Why it failed, e.g. diverged, error.")
    status_message: str | None
    sweep_id: str | None
    activation: str
    tags: list[str]
    spec: dict[str, Any]
    progress: Progress
    summary: dict[str, Any] | None = Field(None, description="Final metrics once finished.")
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Experiment) -> ExperimentRead:
        return cls(
            id=row.id,
            name=row.name,
            status=row.status,
            status_reason=row.status_reason,
            status_message=row.status_message,
            sweep_id=row.sweep_id,
            activation=row.activation,
            tags=row.tags or [],
            spec=row.spec,
            progress=Progress(
                epoch=row.progress_epoch, step=row.progress_step, total=row.progress_total
            ),
            summary=row.summary,
            attempts=row.attempts,
            created_at=row.created_at,
            updated_at=row.updated_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


class ExperimentList(BaseModel):
    items: list[ExperimentRead]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class MetricPoint(BaseModel):
    step: int
    epoch: int
    value: float


class MetricSeries(BaseModel):
    experiment_id: str
    series: dict[str, list[MetricPoint]]


class EventRead(BaseModel):
    id: int
    at: datetime
    kind: str = Field(description="status | log")
    status: str | None
    message: str | None
    data: dict[str, Any] | None
    experiment_id: str | None = Field(None, description="Set on a sweep's events.")


class EventList(BaseModel):
    events: list[EventRead]
    next_after: int = Field(description="Pass as `after` to get only newer events.")


class MetricsBatch(BaseModel):
    experiments: dict[str, dict[str, list[MetricPoint]]] = Field(
        description="experiment id -> metric name -> points ordered by step."
    )
