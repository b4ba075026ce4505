"""The client's lists follow every cursor, against the real app (no server process)."""

from __future__ import annotations

from fastapi.testclient import TestClient

import actlab
from tests.support import canonical_spec


def test_lists_follow_cursors_to_the_last_page(client: TestClient) -> None:
    api = actlab.Client(url="http://testserver", transport=client._transport)
    made = [api.experiments.submit(canonical_spec(), overrides={"seed": s}).id for s in range(5)]
    listed = [e.id for e in api.experiments.list(page_size=2)]
    assert listed == sorted(made, reverse=True)
    base = {k: v for k, v in canonical_spec().items() if k not in ("name", "seed")}
    sweeps = [
        api.sweeps.create({"name": f"s{i}", "base_spec": base, "grid": {}, "seeds": [0]}).id
        for i in range(3)
    ]
    assert [s.id for s in api.sweeps.list(page_size=1)] == sorted(sweeps, reverse=True)
