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


def parse_size(size: str) -> tuple[float, float]:
    """`6x4` -> (6.0, 4.0) inches; one clear error otherwise."""
    from actlab.errors import InputError

    try:
        width, height = (float(v) for v in size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {size!r}: give WIDTHxHEIGHT in inches, e.g. 6x4") from None
    if not (0 < width <= 50 and 0 < height <= 50):
        raise InputError(f"--size {size!r}: each side between 0 and 50 inches")
    return width, height


def plot(
    ids: Ids = None,
    sweep: SweepOpt = None,
    metric: Annotated[
        str, typer.Option(help="A metric, or a pattern like 'act/*/dead_fraction' (a panel each)")
    ] = "val/acc",
    seeds: Annotated[bool, typer.Option("--seeds", help="Also thin per-seed lines")] = False,
    output: Out = Path("curves.png"),
    x: Annotated[str, typer.Option("--x", help="epoch or step")] = "epoch",
    size: Annotated[str, typer.Option(help="Each panel's WIDTHxHEIGHT in inches")] = "6x4",
    dpi: Annotated[int, typer.Option(min=30, max=1200, help="Resolution")] = 150,
    fmt: Annotated[
        str | None, typer.Option("--format", help="png, pdf or svg (default: the suffix)")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Curves to a figure: per arm a mean with its 95% CI band across seeds, for a sweep."""
    from actlab import plotting
    from actlab.errors import InputError

    frame = _frame(ids, sweep, None if "*" in metric else [metric], url, api_key)
    if frame.empty and "*" not in metric:
        # The API answers an unknown name with a 422 listing the names once a run has
        # ended; before that, say which names the runs have reported so far.
        have = sorted(set(_frame(ids, sweep, None, url, api_key, max_points=1)["name"]))
        listed = ", ".join(have) or "none yet"
        raise InputError(f"no points of metric {metric!r}; the experiments have: {listed}")
    panels = plotting.plot(
        frame, metric, output, per_seed=seeds, x=x, size=parse_size(size), dpi=dpi, fmt=fmt
    )
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


SUFFIXES = {".md": "md", ".markdown": "md", ".tex": "latex", ".html": "html", ".htm": "html"}


def report(
    sweep_id: Annotated[str, typer.Argument(help="Sweep id")],
    output: Out = Path("report.md"),
    fmt: Annotated[
        str | None, typer.Option("--format", help="md, latex or html (default: the suffix)")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="The metric of the tables")] = None,
    family: Annotated[str, typer.Option(help="baseline or all_pairs")] = "baseline",
    margin: Annotated[float | None, typer.Option(help="Equivalence margin (TOST)")] = None,
    delta: Annotated[
        float | None, typer.Option(help="Add the seeds needed to detect this difference")
    ] = None,
    curve: Annotated[str, typer.Option(help="The metric drawn as curves")] = "val/acc",
    x: Annotated[str, typer.Option("--x", help="epoch or step")] = "epoch",
    dpi: Annotated[int, typer.Option(min=30, max=1200)] = 150,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """A sweep's report: arms, the family's comparisons, seeds needed and figures."""
    from actlab import report as reports
    from actlab.errors import InputError

    kind = fmt or SUFFIXES.get(output.suffix.lower())
    if kind not in reports.FORMATS:
        raise InputError(
            f"{output}: give --format md, latex or html (or a .md, .tex or .html name)"
        )
    with client(url, api_key) as c:
        built = reports.build(
            c, sweep_id, output, metric=metric, family=family, margin=margin, delta=delta,
            curve=curve, x=x, dpi=dpi,
        )  # fmt: skip
    reports.write(built, output, kind)
    drawn = ", ".join(str(path) for path, _ in built.figures)
    console.print(f"wrote {output} ({kind}) and {drawn}")
