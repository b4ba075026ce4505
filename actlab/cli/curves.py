"""plot and export: curves of experiments or of a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from actlab.cli.common import ApiKey, Url, client, console

if TYPE_CHECKING:
    import pandas as pd

Ids = Annotated[list[str] | None, typer.Argument(help="Experiment ids", show_default=False)]
SweepOpt = Annotated[str | None, typer.Option("--sweep", help="Every experiment of this sweep")]
Out = Annotated[Path, typer.Option("-o", "--output", help="Where to write", dir_okay=False)]


def _frame(ids: list[str] | None, sweep: str | None, names: list[str] | None, url, api_key):  # type: ignore[no-untyped-def]
    if not ids and not sweep:
        raise typer.BadParameter("give experiment ids or --sweep ID")
    with client(url, api_key) as c:
        return c.metrics(ids, sweep=sweep, names=names)


def plot(
    ids: Ids = None,
    sweep: SweepOpt = None,
    metric: Annotated[
        str, typer.Option(help="A metric, or a pattern like 'act/*/dead_fraction' (a panel each)")
    ] = "val/acc",
    seeds: Annotated[bool, typer.Option("--seeds", help="Also thin per-seed lines")] = False,
    output: Out = Path("curves.png"),
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Curves to a PNG: per arm a mean with its 95% CI band across seeds, for a sweep."""
    from actlab import plotting

    frame = _frame(ids, sweep, None if "*" in metric else [metric], url, api_key)
    panels = plotting.plot(frame, metric, output, per_seed=seeds)
    console.print(f"wrote {output} ({panels} panel{'s' if panels != 1 else ''})")


def export(
    ids: Ids = None,
    sweep: SweepOpt = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="Only these metrics (repeatable)")
    ] = None,
    output: Out = Path("metrics.csv"),
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Every point as a table (experiment, sweep, arm, seed, name, step, epoch, value)."""
    frame = _frame(ids, sweep, metric, url, api_key)
    write(frame, output)
    console.print(f"wrote {len(frame)} rows to {output}")


def write(frame: pd.DataFrame, output: Path) -> None:
    """CSV or Parquet, by the file's suffix."""
    if output.suffix == ".parquet":
        try:
            frame.to_parquet(output, index=False)
        except ImportError as exc:
            raise typer.BadParameter(f"{exc}; `pip install pyarrow` for Parquet") from exc
    elif output.suffix == ".csv":
        frame.to_csv(output, index=False)
    else:
        raise typer.BadParameter("write .csv or .parquet", param_hint="-o")
