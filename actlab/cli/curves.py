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


def _frame(ids: list[str] | None, sweep: str | None, names: list[str] | None, url, api_key, **kw):  # type: ignore[no-untyped-def]
    from actlab.errors import InputError

    if not ids and not sweep:
        raise InputError("give experiment ids or --sweep ID")
    with client(url, api_key) as c:
        return c.metrics(ids, sweep=sweep, names=names, **kw)


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
    from actlab.errors import InputError

    frame = _frame(ids, sweep, None if "*" in metric else [metric], url, api_key)
    if frame.empty and "*" not in metric:
        # The API answers an unknown name with a 422 listing the names once a run has
        # ended; before that, say which names the runs have reported so far.
        have = sorted(set(_frame(ids, sweep, None, url, api_key, max_points=1)["name"]))
        listed = ", ".join(have) or "none yet"
        raise InputError(f"no points of metric {metric!r}; the experiments have: {listed}")
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
    if output.suffix == ".parquet":
        require_parquet()  # before the download, not after it
    frame = _frame(ids, sweep, metric, url, api_key)
    write(frame, output)
    console.print(f"wrote {len(frame)} rows to {output}")


def write(frame: pd.DataFrame, output: Path) -> None:
    """CSV or Parquet, by the file's suffix."""
    if output.suffix == ".parquet":
        require_parquet()
        frame.to_parquet(output, index=False)
    elif output.suffix == ".csv":
        frame.to_csv(output, index=False)
    else:
        from actlab.errors import InputError

        raise InputError(f"-o {output}: write .csv or .parquet")


def require_parquet() -> None:
    """MissingDependency naming the extra, before pandas says it in a paragraph."""
    from actlab.errors import MissingDependency

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependency(
            "Parquet export needs pyarrow: install actlab[parquet] (pyarrow), or write .csv"
        ) from None
