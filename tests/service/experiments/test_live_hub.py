"""The hub's delivery rounds: what arrives while streams write is coalesced, and streams are
woken a slice at a time so that requests are served between slices (no Redis needed: the
channel's messages are put in the hub's inbox as its reader would)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from core.settings import Settings
from service.experiments import live
from service.experiments.live import Hub, Subscription
from tests.support import HANG_S


def _message(experiment_id: str, point_id: int) -> bytes:
    body: dict[str, Any] = {
        "experiment_id": experiment_id,
        "events": [],
        "metrics": [[point_id, "train/loss", point_id, 0, 0.5]],
        "progress": None,
        "resync": False,
    }
    return json.dumps(body).encode()


def _hub_with(subs: list[Subscription]) -> Hub:
    hub = Hub(Settings())
    for sub in subs:
        for experiment_id in sub.experiment_ids:
            hub._routes[experiment_id].add(sub)
    return hub


def _arrive(hub: Hub, *messages: bytes) -> None:
    hub._inbox.extend(messages)
    hub._news.set()


def test_messages_that_arrive_during_a_round_reach_a_stream_in_one_wakeup() -> None:
    async def main() -> list[int]:
        sub = Subscription(["e1"])
        hub = _hub_with([sub])
        deliver = asyncio.create_task(hub._deliver())
        _arrive(hub, _message("e1", 1), _message("e1", 2), _message("other", 3))
        _arrive(hub, _message("e1", 4))
        batches = await sub.get(timeout=HANG_S)
        deliver.cancel()
        return [p[0] for b in batches for p in b.points]

    assert asyncio.run(main()) == [1, 2, 4]


def test_streams_are_woken_a_slice_at_a_time_with_the_loop_free_between() -> None:
    n = live.WAKE_SLICE * 3 + 5

    async def main() -> tuple[list[int], int]:
        subs = [Subscription(["e1"]) for _ in range(n)]
        hub = _hub_with(subs)
        woken_when_probed: list[int] = []
        done = 0

        async def stream(sub: Subscription) -> None:
            nonlocal done
            assert [p[0] for b in await sub.get(timeout=HANG_S) for p in b.points] == [7]
            done += 1

        async def probe() -> None:  # a request that arrives while the round is written
            while done < n:
                woken_when_probed.append(done)
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(stream(sub)) for sub in subs]
        await asyncio.sleep(0)  # every stream waits
        deliver = asyncio.create_task(hub._deliver())
        probing = asyncio.create_task(probe())
        _arrive(hub, _message("e1", 7))
        await asyncio.wait_for(asyncio.gather(*tasks, probing), timeout=HANG_S)
        deliver.cancel()
        return woken_when_probed, done

    seen, done = asyncio.run(main())
    assert done == n
    # The probe ran between slices: it saw the round part-way, one slice at a time.
    partial = sorted({d for d in seen if 0 < d < n})
    assert partial, seen
    assert all(d % live.WAKE_SLICE == 0 for d in partial), partial


def test_a_stream_that_falls_too_far_behind_is_closed_with_a_reason() -> None:
    async def main() -> Subscription:
        sub = Subscription(["e1"], limit=3)
        hub = _hub_with([sub])
        deliver = asyncio.create_task(hub._deliver())
        _arrive(hub, *(_message("e1", i) for i in range(1, 6)))
        assert await sub.get(timeout=HANG_S) == []
        deliver.cancel()
        return sub

    sub = asyncio.run(main())
    assert sub.closed is not None and "too slowly" in sub.closed
