"""HTTP schemas of the queue view."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.experiments.schemas import Progress, QueuePlace


class QueueItem(BaseModel):
    id: str
    name: str | None
    owner: str | None = Field(description="Shown to admins; yours otherwise.")
    sweep_id: str | None
    status: Literal["queued", "running", "cancelling"]
    priority: int
    progress: Progress
    queue: QueuePlace | None = Field(None, description="For queued experiments.")
    worker: str | None = Field(None, description="The worker running it.")
    remaining_seconds: float | None = Field(
        None, description="Running: estimated seconds to its end, from the measured speed."
    )


class OtherWork(BaseModel):
    """Other owners' work, as counts: never their names or ids."""

    queued: int
    running: int


class Workers(BaseModel):
    live: int
    busy: int


class QueueRead(BaseModel):
    """Your running and queued work (an admin's: everyone's), running first, then queued in
    the order the policy would start it."""

    policy: Literal["fair", "fifo"]
    items: list[QueueItem]
    others: OtherWork
    workers: Workers
