"""The `actlab worker` verb: one worker process (one per GPU).

Found by `actlab` (actlab/cli) through the `actlab.server` entry-point group, and imported
only when the verb runs; `actlab up` starts it as a process of its own.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def worker(
    name: Annotated[
        str | None, typer.Option(help="Celery node name (default: host + pid)", show_default=False)
    ] = None,
    loglevel: Annotated[str | None, typer.Option(show_default=False)] = None,
) -> None:
    """run one worker process (one per GPU)"""
    from core import logs
    from core.settings import get_settings
    from worker.main import run_worker

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    settings.ensure_dirs()
    code = run_worker(settings, name=name, loglevel=loglevel)
    if code:
        raise typer.Exit(code)
