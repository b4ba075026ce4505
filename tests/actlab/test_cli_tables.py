"""`actlab ls`'s table: fits a terminal, and stays one row a line when piped."""

from __future__ import annotations

import io

from rich.console import Console

from actlab.cli.common import print_rows

COLUMNS = ["id", "name", "status", "activation", "progress", "test/acc"]
AUTO_NAME = (
    "relu-vs-noisy/activation.name=noisy_relu,noise_schedule.kind=constant,"
    "activation.params.sigma=0.3,optimizer.lr=0.01/seed=4"
)
ROWS = [
    ["exp_0123456789abcdef", AUTO_NAME, "succeeded", "noisy_relu", "20 ep / 2000 st", 0.91234],
    ["exp_fedcba9876543210", "short", "queued", "relu", "0 ep / 0 st", None],
]


def _render(*, terminal: bool, width: int = 80) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=width, color_system=None)
    print_rows(COLUMNS, ROWS, shrink="name", out=console)
    return out.getvalue().splitlines()


def test_in_a_terminal_the_name_is_ellipsized_to_fit_80_columns() -> None:
    lines = _render(terminal=True)
    assert len(lines) == 1 + len(ROWS), lines  # a header and one line a row
    assert all(len(line) <= 80 for line in lines), lines
    first = lines[1]
    for cell in ("exp_0123456789abcdef", "succeeded", "noisy_relu", "20 ep / 2000 st", "0.9123"):
        assert cell in first, first  # every other column whole
    name = first.split()[1]
    assert name.endswith("…") and AUTO_NAME.startswith(name[:-1]), name


def test_piped_every_row_is_one_line_with_every_cell_whole() -> None:
    lines = _render(terminal=False)
    assert len(lines) == 1 + len(ROWS), lines
    [hit] = [line for line in lines if AUTO_NAME in line]  # `actlab ls | grep NAME`
    assert hit.startswith("exp_0123456789abcdef") and hit.endswith("0.9123")
    assert lines[0].split() == COLUMNS
