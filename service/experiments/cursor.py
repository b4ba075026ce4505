"""Stream ids: what a client has, per experiment, so that a reconnect resumes without gap.

An experiment's stream id is `E-M`: the largest event id and the largest metric-point id
it delivered. One lease holder writes an experiment's points in id order, so "every point
up to M" is exact for one experiment.

Across the experiments of a sweep ids are not in commit order: two workers commit at
nearly the same moment, and the message of the later id can arrive first. One `E-M` for
the whole sweep would then skip the other experiment's point on a reconnect. A sweep
stream's id therefore says where each experiment stands:

    E-M[/k:a-b,k:a-b,...]

`E-M` is the largest event and point id over the sweep; each `k:a-b` is the experiment at
index `k` (the sweep's experiments ordered by id) whose cursor is `E-a`, `M-b`. An
experiment not listed stands at `E-M`: one that ended (nothing more comes from it) or one
exactly at the top. The list holds the experiments that may still write, so it stays short
while a sweep runs a few at a time; its length is bounded by the sweep's size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.errors import InvalidSpec

MAX_ID = 2**63 - 1
_ENTRY = r"\d{1,6}:\d{1,19}-\d{1,19}"
_FORMAT = re.compile(rf"(\d{{1,19}})(?:-(\d{{1,19}}))?(?:/({_ENTRY}(?:,{_ENTRY})*))?")
MAX_HEADER = 16_384  # a sweep of the largest size, every experiment listed, fits
# The header's schema: the same form, at most 18 digits per number (every id fits a bigint
# column); empty means none.
_ENTRY_18 = "[0-9]{1,6}:[0-9]{1,18}-[0-9]{1,18}"
STREAM_ID_PATTERN = rf"^([0-9]{{1,18}}(-[0-9]{{1,18}})?(/{_ENTRY_18}(,{_ENTRY_18})*)?)?$"


def _invalid(message: str) -> InvalidSpec:
    return InvalidSpec(
        f"Last-Event-ID: {message}",
        errors=[{"path": "header.last-event-id", "message": message}],
    )


@dataclass
class Cursor:
    """Per experiment: the largest event id and metric-point id the client has."""

    events: dict[str, int]
    metrics: dict[str, int]

    @classmethod
    def parse(cls, last_event_id: str | None, after: int, ids: Sequence[str]) -> Cursor:
        """From a Last-Event-ID header (a bare number is an event id, like `after`)."""
        if not last_event_id:
            return cls(dict.fromkeys(ids, after), dict.fromkeys(ids, 0))
        match = _FORMAT.fullmatch(last_event_id.strip())
        if match is None:
            raise _invalid("expected '<event id>-<metric id>' as sent in a stream's id")
        top_event, top_metric = int(match[1]), int(match[2] or 0)
        if max(top_event, top_metric) > MAX_ID:
            raise _invalid("id out of range")
        cursor = cls(dict.fromkeys(ids, top_event), dict.fromkeys(ids, top_metric))
        for entry in match[3].split(",") if match[3] else ():
            index, _, deltas = entry.partition(":")
            behind_event, behind_metric = (int(x) for x in deltas.split("-"))
            k = int(index)
            if k >= len(ids) or behind_event > top_event or behind_metric > top_metric:
                raise _invalid(f"entry {entry!r} does not fit this stream")
            cursor.events[ids[k]] = top_event - behind_event
            cursor.metrics[ids[k]] = top_metric - behind_metric
        return cursor

    def single(self, experiment_id: str) -> str:
        """The id of one experiment's stream: `E-M`."""
        return f"{self.events[experiment_id]}-{self.metrics[experiment_id]}"

    def sweep(self, ids: Sequence[str], ended: Callable[[str], bool]) -> str:
        """The id of a sweep stream: the top pair, then every experiment that stands lower
        and may still write."""
        top_event, top_metric = max(self.events.values()), max(self.metrics.values())
        entries = []
        for k, experiment_id in enumerate(ids):
            event, metric = self.events[experiment_id], self.metrics[experiment_id]
            if (event, metric) != (top_event, top_metric) and not ended(experiment_id):
                entries.append(f"{k}:{top_event - event}-{top_metric - metric}")
        head = f"{top_event}-{top_metric}"
        return f"{head}/{','.join(entries)}" if entries else head
