"""API answers as pandas DataFrames (pandas is imported only here)."""

from __future__ import annotations

from typing import Any

import pandas as pd

COLUMNS = ["experiment", "sweep", "arm", "seed", "name", "step", "epoch", "value"]


def metrics_frame(body: dict[str, Any]) -> pd.DataFrame:
    """/v1/metrics/series as one long table, one row per point."""
    labels = body.get("labels") or {}
    rows = []
    for exp_id, series in body.get("experiments", {}).items():
        label = labels.get(exp_id) or {}
        for name, points in series.items():
            for p in points:
                rows.append(
                    (
                        exp_id,
                        label.get("sweep_id"),
                        label.get("arm"),
                        label.get("seed"),
                        name,
                        p["step"],
                        p["epoch"],
                        p["value"],
                    )
                )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"step": "int64", "epoch": "int64", "value": "float64"})
