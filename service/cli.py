"""The server's verbs of the `actlab` command: up, api, db upgrade, keys.

`actlab` (actlab/cli) finds them through the `actlab.server` entry-point group and imports
this module only when one of them runs; the `worker` verb is the worker's own (worker/cli.py).
Each verb imports what it needs inside its function, so building this app stays cheap.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from core.settings import Settings
    from service.embedded import EmbeddedRedis
    from service.supervise import Supervisor

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="database commands", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for a shared box", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")

Host = Annotated[str | None, typer.Option(help="default: ACTLAB_API_HOST", show_default=False)]
Port = Annotated[int | None, typer.Option(help="default: ACTLAB_API_PORT", show_default=False)]


def _settings() -> Settings:
    """The settings from the environment, with logging configured from them."""
    from core import logs
    from core.settings import get_settings

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    return settings


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """apply migrations"""
    from core.store.migrate import DatabaseEncodingError, upgrade

    settings = _settings()
    settings.ensure_dirs()
    try:
        upgrade(settings.resolved_database_url, revision)
    except DatabaseEncodingError as exc:
        print(f"actlab db upgrade: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    print(f"database at revision {revision}: {_redact(settings.resolved_database_url)}")


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """serve the HTTP API"""
    _serve(_settings(), host, port)


# How long the API keeps an idle keep-alive connection open. uvicorn's default, 5 s, is about
# the interval at which a script polls a run: its next request then races the server's close
# on the same connection and fails with "Server disconnected without sending a response"
# (seen in a test whose polls a busy box had spaced out). 75 s leaves the close to clients
# that stopped polling, at the cost of one idle socket per such client.
KEEP_ALIVE_S = 75


def _serve(
    settings: Settings,
    host: str | None,
    port: int | None,
    stop_on: Sequence[signal.Signals] = (),
    children: Supervisor | None = None,
) -> None:
    """Run the API until uvicorn's signals (SIGINT, SIGTERM) or one of `stop_on` stop it;
    `/healthz` reports `children` (those `actlab up` started) when given.

    uvicorn re-raises the signal that stopped it once it has shut down; the handlers here
    make that a no-op, so the caller's cleanup runs instead of the default action killing
    the process (which left `up`'s worker and Redis orphaned).
    """
    import uvicorn

    from service.app import create_app

    host = host or settings.api_host
    port = port or settings.api_port
    print(f"actlab API on http://{host}:{port}  (docs: http://{host}:{port}/docs)", flush=True)
    app = create_app(settings)
    app.state.children = children  # /healthz reports the supervised children, if any
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_keep_alive=KEEP_ALIVE_S
    )
    server = uvicorn.Server(config)

    def graceful(*_: object) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, graceful) for sig in stop_on}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def up(host: Host = None, port: Port = None) -> None:
    """embedded mode: redis + migrations + API + one worker"""
    from core.store.migrate import upgrade
    from service.embedded import EmbeddedRedis
    from service.supervise import Supervisor

    settings = _settings()
    settings.ensure_dirs()
    if "ACTLAB_AUTH_ENABLED" not in os.environ:
        # One researcher's laptop: no API keys unless asked for explicitly.
        settings = settings.model_copy(update={"auth_enabled": False})
    # SIGTERM (systemd, docker stop, kill) and SIGHUP (a closed terminal) end `up` as Ctrl-C
    # does: the worker hands its experiment back, then the broker stops. Until the API
    # runs, they interrupt startup; then they stop the API gracefully.
    stops = (signal.SIGTERM, signal.SIGHUP)
    for sig in stops:
        signal.signal(sig, _interrupt)
    # The broker and the worker are restarted if they die (service/supervise.py); /healthz
    # reports them.
    children = Supervisor()
    broker = None
    try:
        if settings.embedded_broker:
            broker = EmbeddedRedis(settings.data_dir, settings.redis_socket).start()
            # One already answering on the socket was adopted: not our child to restart.
            if broker.process is not None:
                children.add("broker", broker.process, _restarter(broker))
            print(f"embedded redis on {settings.redis_socket}", flush=True)
        upgrade(settings.resolved_database_url)
        print(f"database ready: {_redact(settings.resolved_database_url)}", flush=True)
        children.add("worker", _start_worker(), _start_worker)
        children.start()
        _serve(settings, host, port, stop_on=stops, children=children)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        for sig in stops:  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        children.stop()  # no restarts while shutting down
        _stop_worker(children.process("worker"))
        if broker:
            broker.stop()
        print("actlab stopped", flush=True)


def _restarter(broker: EmbeddedRedis) -> Callable[[], subprocess.Popen[bytes]]:
    """Start the embedded broker again, on the same socket and data (append-only file)."""

    def restart() -> subprocess.Popen[bytes]:
        broker.process = None  # the dead one, reaped by the supervisor
        broker.start()
        if broker.process is None:
            raise RuntimeError(f"another server answers on {broker.socket}")
        return broker.process

    return restart


def _start_worker() -> subprocess.Popen[bytes]:
    """The `actlab worker` verb, started as a process (no import of the worker here), in its
    own session: Ctrl-C reaches `up` alone, which then stops the worker (SIGTERM: checkpoint
    and hand back) before the broker, not all three at once."""
    return subprocess.Popen(
        [sys.executable, "-m", "actlab", "worker"], env=os.environ, start_new_session=True
    )


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _stop_worker(worker: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM lets the worker checkpoint a running experiment and hand it back."""
    if worker is None or worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _owner_name(value: str) -> str:
    if not 1 <= len(value) <= 40 or not value.replace("-", "").replace("_", "").isalnum():
        raise typer.BadParameter("1-40 letters, digits, '-' or '_'")
    return value


Owner = Annotated[str, typer.Argument(help="the owner (a person or a team)", callback=_owner_name)]


Weight = Annotated[
    float | None,
    typer.Option("--weight", min=0.01, max=1000.0, help="fair-share weight (default 1)"),
]
MaxRunning = Annotated[
    int | None,
    typer.Option("--max-running", min=0, help="most experiments running at once (default: no cap)"),
]
MaxPriority = Annotated[
    int | None,
    typer.Option(
        "--max-priority", min=-100, max=100, help="highest priority it may ask for (default 0)"
    ),
]


@keys_app.command("create")
def keys_create(
    name: Owner,
    admin: Annotated[bool, typer.Option("--admin", help="sees every owner's work")] = False,
    weight: Weight = None,
    max_running: MaxRunning = None,
    max_priority: MaxPriority = None,
) -> None:
    """create a key for NAME and print it once (with the owner's scheduling knobs)"""
    from service import auth

    with _session() as session:
        key = auth.create_key(session, owner=name, admin=admin)
        _set_knobs(session, name, weight, max_running, max_priority)
    print(key)
    print(
        f"# API key for {name!r}{' (admin)' if admin else ''}: shown once,"
        " store it now. Send it as `Authorization: Bearer <key>`.",
        file=sys.stderr,
    )


@keys_app.command("set")
def keys_set(
    name: Owner,
    weight: Weight = None,
    max_running: MaxRunning = None,
    max_priority: MaxPriority = None,
    no_max_running: Annotated[
        bool, typer.Option("--no-max-running", help="remove the running cap")
    ] = False,
) -> None:
    """change an owner's scheduling knobs (those not given keep their values)"""
    with _session() as session:
        knobs = _set_knobs(session, name, weight, max_running, max_priority)
        if no_max_running:
            from core.store import owners

            knobs = owners.set_knobs(session, name, max_running=None)
    print(_knobs_line(knobs))


def _set_knobs(session, name, weight, max_running, max_priority):  # type: ignore[no-untyped-def]
    """The knobs given change; one not given (None) keeps its value."""
    from core.store import owners

    return owners.set_knobs(
        session,
        name,
        weight=weight,
        max_running=owners.UNSET if max_running is None else max_running,
        max_priority=max_priority,
    )


def _knobs_line(knobs) -> str:  # type: ignore[no-untyped-def]
    cap = "no cap" if knobs.max_running is None else str(knobs.max_running)
    return (
        f"{knobs.owner}\tweight {knobs.weight:g}\tmax running {cap}"
        f"\tmax priority {knobs.max_priority}"
    )


@keys_app.command("revoke")
def keys_revoke(prefix: str) -> None:
    """revoke a key by its prefix"""
    from service import auth

    with _session() as session:
        auth.revoke_key(session, prefix=prefix)
    print(f"revoked key {prefix}")


@keys_app.command("list")
def keys_list() -> None:
    """prefixes, owners and states (never the keys)"""
    from sqlalchemy import select

    from core.store import owners
    from core.store.models import ApiKey

    with _session() as session:
        for row in session.scalars(select(ApiKey).order_by(ApiKey.created_at)):
            state = "revoked" if row.revoked_at else "active"
            knobs = _knobs_line(owners.knobs(session, row.owner)).split("\t", 1)[1]
            role = "admin" if row.admin else "user"
            print(f"{row.prefix}\t{row.owner}\t{role}\t{state}\t{knobs}")


def _session():  # type: ignore[no-untyped-def]
    from core.store.db import session_scope

    return session_scope(_settings().resolved_database_url)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
