"""queue: where your work stands on a shared box."""

from __future__ import annotations

from typing import Annotated

import typer

from actlab.cli.common import ApiKey, Url, client, console, table


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return "now"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


def queue(
    as_json: Annotated[bool, typer.Option("--json", help="The raw JSON")] = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Your running and queued work in the order it would start: position, why it waits,
    estimated start (other owners' work shown as counts)."""
    with client(url, api_key) as c:
        view = c.queue()
    if as_json:
        console.print_json(view.model_dump_json())
        return
    rows = []
    for item in view.items:
        place = item.queue
        if place is None:
            where, why = item.status, f"on {item.worker or '?'}"
            eta = f"ends in {_eta(item.remaining_seconds)}"
        else:
            where = f"#{place.position} ({place.ahead_other_owners} others' ahead)"
            why, eta = place.reason, _eta(place.eta_seconds)
        rows.append([item.id, item.name or "", item.priority, where, why, eta])
    title = (
        f"queue ({view.policy}): {view.workers.busy}/{view.workers.live} workers busy; "
        f"others' work: {view.others.running} running, {view.others.queued} queued"
    )
    console.print(table(title, ["id", "name", "priority", "place", "why", "start"], rows))
