"""Options, the client and rendering shared by the CLI's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from actlab.client import Client
    from actlab.models import Experiment

console = Console()
err_console = Console(stderr=True)

Url = Annotated[
    str | None,
    typer.Option("--url", envvar="ACTLAB_URL", help="Server URL [default: http://127.0.0.1:8000]"),
]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="ACTLAB_API_KEY", help="API key (Bearer)", show_default=False),
]
# No `exists=True`: a missing file is the loader's one-line SpecError, as an unreadable one is.
Document = Annotated[Path, typer.Argument(help="A spec (or a sweep) as YAML or JSON")]
Wait = Annotated[bool, typer.Option("--wait", help="Show progress until it ends, then the result")]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a dotted path: --set training.epochs=5 (repeatable)"),
]


def client(url: str | None, api_key: str | None) -> Client:
    """The client (httpx and pydantic are imported only now, not for --help)."""
    from actlab.client import Client

    return Client(url=url, api_key=api_key)


def overrides(sets: list[str] | None) -> dict[str, Any]:
    """--set PATH=VALUE pairs as a dict (values read as JSON, else strings)."""
    from actlab.specs import parse_assignment

    out: dict[str, Any] = {}
    for item in sets or []:
        path, value = parse_assignment(item)  # SpecError: one line, from main()
        out[path] = value
    return out


def fmt(value: Any, digits: int = 4) -> str:
    """A cell: floats rounded, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return str(value)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    out = Table(title=title, header_style="bold")
    for name in columns:
        out.add_column(name, overflow="fold", no_wrap=name == "id")
    for row in rows:
        out.add_row(*(fmt(v) for v in row))
    return out


def print_rows(
    columns: list[str], rows: list[list[Any]], *, shrink: str, out: Console = console
) -> None:
    """A table of one row a line. In a terminal it fits the width by ellipsizing the
    `shrink` column alone (a sweep member's auto name wrapped over many lines before);
    piped, it is plain columns as wide as their cells, so `actlab ls | grep NAME` finds
    every name whole."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    if not out.is_terminal:
        for row in [columns, *cells]:
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            out.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    t = Table(header_style="bold", box=None, pad_edge=False)
    others = sum(w for name, w in zip(columns, widths, strict=True) if name != shrink)
    room = out.width - others - 2 * (len(columns) - 1)  # two spaces between columns
    for name, width in zip(columns, widths, strict=True):
        if name == shrink:
            t.add_column(name, overflow="ellipsis", no_wrap=True, max_width=max(room, 8))
        else:
            t.add_column(name, no_wrap=True, min_width=width)
    for row in cells:
        t.add_row(*row)
    out.print(t)


def show_experiment(exp: Experiment) -> None:
    """Status, progress and summary of one experiment."""
    p = exp.progress
    console.print(f"[bold]{exp.id}[/bold]  {exp.name or ''}")
    console.print(
        f"status    {exp.status}" + (f" ({exp.status_reason})" if exp.status_reason else "")
    )
    if exp.status_message:
        console.print(f"message   {exp.status_message}")
    console.print(f"progress  epoch {p.epoch}, step {p.step}/{p.total or '?'}")
    console.print(
        f"attempts  {exp.attempts}   activation {exp.activation}   sweep {exp.sweep_id or '-'}"
    )
    if exp.fork:
        changed = ", ".join(f"{k}={json.dumps(v)}" for k, v in exp.fork["overrides"].items())
        console.print(
            f"fork of   {exp.fork['parent_id']} at step {exp.fork['at_step']}"
            f" ({changed or 'no change'}; noise clock {exp.fork['noise_clock']})"
        )
    summary = exp.summary or {}
    flat = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    if flat:
        console.print(
            table("summary", ["metric", "value"], [[k, v] for k, v in sorted(flat.items())])
        )
    for key, value in summary.items():
        if isinstance(value, dict):
            console.print(f"{key}: {json.dumps(value)}")
