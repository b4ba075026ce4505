"""The `actlab` command: the researcher's verbs (client) and the server's (lazy)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from actlab.cli import curves, experiments, sweeps

SERVER_VERBS = {
    "up": "embedded mode: Redis, migrations, one worker and the API",
    "api": "the HTTP API alone",
    "worker": "one worker process (one per GPU)",
    "db": "database migrations (db upgrade [REVISION])",
    "keys": "API keys: keys create NAME [--admin], keys revoke PREFIX, keys list",
}

app = typer.Typer(
    name="actlab",
    help="actlab: train and compare activation functions on an actlab server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for command in (
    experiments.submit,
    experiments.preview,
    experiments.ls,
    experiments.show,
    experiments.watch,
    experiments.cancel,
    experiments.retry,
    curves.plot,
    curves.export,
):
    app.command()(command)
app.add_typer(sweeps.app, name="sweep")


def _server_stub(verb: str, help_text: str) -> None:
    def stub(
        args: Annotated[list[str] | None, typer.Argument(help="see `actlab VERB --help`")] = None,
    ) -> None:
        raise typer.Exit(_serve([verb, *(args or [])]))

    stub.__doc__ = f"(server) {help_text}"
    app.command(
        verb,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
        rich_help_panel="Server",
    )(stub)


for _verb, _help in SERVER_VERBS.items():
    _server_stub(_verb, _help)


def _serve(argv: list[str]) -> int:
    """The server's verbs live in service.cli, imported only now (torch, SQLAlchemy...)."""
    from service.cli import main as server_main

    return server_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `actlab` command."""
    from actlab import errors

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SERVER_VERBS:
        return _serve(args)
    try:
        app(args, standalone_mode=False)
    except errors.ApiError as exc:
        _fail(exc)
        return 1
    except errors.ConnectionFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        return 130
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


def _fail(exc: object) -> None:
    from actlab.errors import ApiError

    assert isinstance(exc, ApiError)
    print(f"error: {exc}", file=sys.stderr)
    for err in exc.errors:
        print(f"  {err.get('path')}: {err.get('message')}", file=sys.stderr)
    if exc.setting:
        print(f"  raise the limit with {exc.setting}", file=sys.stderr)
