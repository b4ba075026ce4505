"""What a stream sends, encoded once and shared: a batch of rows and its SSE frames' bytes.

One message on the live channel (or one database read) becomes one `Batch`. Every stream
it reaches renders the same batch, so the JSON of each payload is encoded once per batch
and flavour (tagged with `experiment_id` for a sweep stream, or not) and the bytes are
shared by every stream; a stream only adds its own `id:` line. The frames have the shape
sse-starlette's `ServerSentEvent.encode()` gives (`id`, `event`, then one `data` line:
compact JSON holds no newline), written here as bytes because at 1000 streams the
per-frame cost of building and encoding an object per stream is most of the API's CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def dumps(data: Any) -> bytes:
    """Compact JSON, as one line (JSON escapes the newlines inside strings)."""
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def frame(kind: str, stream_id: str, data: bytes) -> bytes:
    """One SSE message: `id:`, `event:` and a single `data:` line."""
    return b"".join(
        (b"id: ", stream_id.encode(), b"\nevent: ", kind.encode(), b"\ndata: ", data, b"\n\n")
    )


def comment(text: str) -> bytes:
    """An SSE comment line (clients ignore it; it says why the server closes, say)."""
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


def point_json(point: list[Any], tagged: bool) -> dict[str, Any]:
    _, experiment_id, name, step, epoch, value = point
    body = {"name": name, "step": step, "epoch": epoch, "value": value}
    return {"experiment_id": experiment_id, **body} if tagged else body


@dataclass
class Batch:
    """What one database read or one channel message brings, with its encoded payloads."""

    points: list[list[Any]] = field(default_factory=list)  # [id, experiment, name, step, ...]
    events: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    full: bool = False  # a page was full: read again
    experiment_id: str | None = None  # a channel message: one experiment, points in id order
    hides_rows: bool = False  # the database may hold rows of it that were never published
    tick: int = 0  # the hub's clock when the message arrived
    _encoded: dict[tuple[Any, ...], bytes] = field(default_factory=dict, repr=False)

    def points_data(self, tagged: bool) -> bytes:
        """Every point of the batch as one `metrics` payload."""
        key = ("points", tagged)
        data = self._encoded.get(key)
        if data is None:
            data = self._encoded[key] = dumps([point_json(p, tagged) for p in self.points])
        return data

    def event_data(self, index: int, tagged: bool) -> bytes:
        key = ("event", index, tagged)
        data = self._encoded.get(key)
        if data is None:
            row = self.events[index]
            body = row if tagged else {k: v for k, v in row.items() if k != "experiment_id"}
            data = self._encoded[key] = dumps(body)
        return data

    def progress_data(self, experiment_id: str, tagged: bool) -> bytes:
        key = ("progress", experiment_id, tagged)
        data = self._encoded.get(key)
        if data is None:
            progress = self.progress[experiment_id]
            body = {"experiment_id": experiment_id, **progress} if tagged else progress
            data = self._encoded[key] = dumps(body)
        return data


def from_channel(news: dict[str, Any]) -> Batch:
    """A live-channel message (see core/store/publish.py) as a batch."""
    experiment_id = news["experiment_id"]
    points = [[p[0], experiment_id, *p[1:]] for p in news["metrics"]]
    progress = {experiment_id: news["progress"]} if news["progress"] else {}
    return Batch(
        points=points,
        events=list(news["events"]),
        progress=progress,
        experiment_id=experiment_id,
        hides_rows=may_hide_rows(news),
    )


def may_hide_rows(news: dict[str, Any]) -> bool:
    """Whether the database may hold rows of this experiment that were never published.

    A publish failed (`resync`), or the experiment went back to the queue or a new attempt
    began: the previous attempt's worker may have died between a commit and its publish.
    """
    if news["resync"]:
        return True
    for row in news["events"]:
        if row["kind"] != "status":
            continue
        attempt = (row.get("data") or {}).get("attempt", 1)
        if row["status"] == "queued" or (row["status"] == "running" and attempt != 1):
            return True
    return False
