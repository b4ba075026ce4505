"""The `actlab` command: the researcher's verbs (client) and the server's (lazy)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from actlab.cli import curves, experiments, queue, sweeps

SERVER_VERBS = {
    "up": "embedded mode: Redis, migrations, one worker and the API",
    "api": "the HTTP API alone",
    "worker": "one worker process (one per GPU)",
    "db": "database migrations (db upgrade [REVISION])",
    "keys": "API keys and owners' knobs: keys create NAME [--admin] [--weight W]"
    " [--max-running N] [--max-priority P], keys set NAME ..., keys revoke PREFIX, keys list",
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
    experiments.fork,
    experiments.preview,
    experiments.ls,
    experiments.show,
    experiments.watch,
    experiments.cancel,
    experiments.retry,
    curves.plot,
    curves.export,
    curves.report,
    queue.queue,
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


# The one seam between the client and the server: the server's distributions list their
# typer apps in this entry-point group (pyproject.toml: service.cli for up, api, db and keys;
# worker.cli for worker), and they are loaded only when one of SERVER_VERBS runs, so the
# client's verbs and `actlab --help` import no torch, SQLAlchemy or Celery.
SERVER_GROUP = "actlab.server"


def server_app() -> typer.Typer:
    """The server's verbs as one app, from every app in the `actlab.server` group."""
    from importlib.metadata import entry_points

    server = typer.Typer(name="actlab", add_completion=False, pretty_exceptions_enable=False)
    for entry in sorted(entry_points(group=SERVER_GROUP), key=lambda e: e.name):
        part = entry.load()
        server.registered_commands.extend(part.registered_commands)
        server.registered_groups.extend(part.registered_groups)
    return server


def _serve(argv: list[str]) -> int:
    """Run a server verb (the server's code is imported only now)."""
    server = server_app()
    if not server.registered_commands:
        print(
            f"error: `actlab {argv[0]}` needs the server, which is not installed here "
            "(in a checkout: pip install -e .)",
            file=sys.stderr,
        )
        return 2
    try:
        server(argv, prog_name="actlab")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


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
    except errors.ActlabError as exc:  # the client's own: a spec file, --set, a missing extra
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        return 130
    except typer.TyperException as exc:  # usage errors (typer's own copy of click's)
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(exc, "exit_code", 2))
    return 0


def _fail(exc: object) -> None:
    """An API error: its detail, then the field errors the detail does not already give.

    A 422's detail joins its first field errors ("a: ...; b: ..."), so listing every error
    under it printed each of those twice; the lines below are only the ones it left out.
    """
    from actlab.errors import ApiError

    assert isinstance(exc, ApiError)
    print(f"error: {exc}", file=sys.stderr)
    for err in exc.errors:
        line = f"{err.get('path')}: {err.get('message')}"
        if line not in exc.detail:
            print(f"  {line}", file=sys.stderr)
    if exc.setting:
        print(f"  raise the limit with {exc.setting}", file=sys.stderr)
