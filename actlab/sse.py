"""Server-Sent Events: parse frames, and follow a stream across reconnects."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Frame:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data as JSON (a string if it is not)."""
        try:
            return json.loads(self.data)
        except ValueError:
            return self.data


@dataclass
class _Builder:
    event: str = ""
    data: list[str] = field(default_factory=list)
    id: str | None = None
    retry: int | None = None

    def feed(self, line: str) -> None:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and "\0" not in value:
            self.id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)

    def build(self) -> Frame | None:
        if not self.data and not self.event:
            return None
        return Frame(self.event or "message", "\n".join(self.data), self.id, self.retry)


def frames(lines: Iterable[str]) -> Iterator[Frame]:
    """Frames from a stream's lines (comments, e.g. keep-alives, are skipped)."""
    builder = _Builder()
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            frame = builder.build()
            builder = _Builder()
            if frame is not None:
                yield frame
        elif not line.startswith(":"):
            builder.feed(line)
