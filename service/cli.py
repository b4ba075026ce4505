"""The `actlab` command: up, api, worker, db upgrade, keys."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from service import logs
from service.settings import Settings, get_settings


def _cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from service.store.migrate import DatabaseEncodingError, upgrade

    _ensure_dirs(settings)
    try:
        upgrade(settings.resolved_database_url, args.revision)
    except DatabaseEncodingError as exc:
        print(f"actlab db upgrade: {exc}", file=sys.stderr)
        return 2
    print(f"database at revision {args.revision}: {_redact(settings.resolved_database_url)}")
    return 0


def _cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    return _serve(settings, args)


def _serve(
    settings: Settings, args: argparse.Namespace, stop_on: Sequence[signal.Signals] = ()
) -> int:
    """Run the API until uvicorn's signals (SIGINT, SIGTERM) or one of `stop_on` stop it.

    uvicorn re-raises the signal that stopped it once it has shut down; the handlers here
    make that a no-op, so the caller's cleanup runs instead of the default action killing
    the process (which left `up`'s worker and Redis orphaned).
    """
    import uvicorn

    from service.app import create_app

    host = args.host or settings.api_host
    port = args.port or settings.api_port
    print(f"actlab API on http://{host}:{port}  (docs: http://{host}:{port}/docs)", flush=True)
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="info")
    server = uvicorn.Server(config)

    def graceful(*_: object) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, graceful) for sig in stop_on}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker.main import run_worker

    _ensure_dirs(settings)
    return run_worker(settings, name=args.name, loglevel=args.loglevel)


def _cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Embedded mode: Redis (unless a broker URL is set), migrations, one worker, the API."""
    from service.embedded import EmbeddedRedis
    from service.store.migrate import upgrade

    _ensure_dirs(settings)
    if "ACTLAB_AUTH_ENABLED" not in os.environ:
        # One researcher's laptop: no API keys unless asked for explicitly.
        settings = settings.model_copy(update={"auth_enabled": False})
    # SIGTERM (systemd, docker stop, kill) and SIGHUP (a closed terminal) end `up` as Ctrl-C
    # does: the worker hands its experiment back, then the broker stops. Until the API
    # runs, they interrupt startup; then they stop the API gracefully.
    stops = (signal.SIGTERM, signal.SIGHUP)
    for sig in stops:
        signal.signal(sig, _interrupt)
    broker, worker = None, None
    try:
        if settings.embedded_broker:
            broker = EmbeddedRedis(settings.data_dir, settings.redis_socket).start()
            print(f"embedded redis on {settings.redis_socket}", flush=True)
        upgrade(settings.resolved_database_url)
        print(f"database ready: {_redact(settings.resolved_database_url)}", flush=True)
        # Its own session too: Ctrl-C reaches `up` alone, which then stops the worker
        # (SIGTERM: checkpoint and hand back) before the broker, not all three at once.
        worker = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"], env=os.environ, start_new_session=True
        )
        return _serve(settings, args, stop_on=stops)
    finally:
        for sig in stops:  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        _stop_worker(worker)
        if broker:
            broker.stop()
        print("actlab stopped", flush=True)


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


def _cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from service import auth
    from service.store.db import session_scope
    from service.store.models import ApiKey

    with session_scope(settings.resolved_database_url) as session:
        if args.keys_command == "create":
            key = auth.create_key(session, owner=args.name, admin=args.admin)
            print(key)
            print(
                f"# API key for {args.name!r}{' (admin)' if args.admin else ''}: shown once,"
                " store it now. Send it as `Authorization: Bearer <key>`.",
                file=sys.stderr,
            )
        elif args.keys_command == "revoke":
            auth.revoke_key(session, prefix=args.prefix)
            print(f"revoked key {args.prefix}")
        else:
            for row in session.scalars(select(ApiKey).order_by(ApiKey.created_at)):
                state = "revoked" if row.revoked_at else "active"
                print(f"{row.prefix}\t{row.owner}\t{'admin' if row.admin else 'user'}\t{state}")
    return 0


def _ensure_dirs(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.resolved_checkpoint_dir.mkdir(parents=True, exist_ok=True)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _owner_name(value: str) -> str:
    if not 1 <= len(value) <= 40 or not value.replace("-", "").replace("_", "").isalnum():
        raise argparse.ArgumentTypeError("1-40 letters, digits, '-' or '_'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="embedded mode: redis + migrations + API + one worker")
    api = sub.add_parser("api", help="serve the HTTP API")
    for p in (up, api):
        p.add_argument("--host", default=None, help="default: ACTLAB_API_HOST")
        p.add_argument("--port", type=int, default=None, help="default: ACTLAB_API_PORT")
    up.set_defaults(func=_cmd_up)
    api.set_defaults(func=_cmd_api)
    worker = sub.add_parser("worker", help="run one worker process (one per GPU)")
    worker.add_argument("--name", default=None, help="Celery node name (default: host + pid)")
    worker.add_argument("--loglevel", default=None)
    worker.set_defaults(func=_cmd_worker)
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=_cmd_db_upgrade)
    keys = sub.add_parser("keys", help="API keys for a shared box")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key for NAME and print it once")
    create.add_argument("name", type=_owner_name, help="the owner (a person or a team)")
    create.add_argument("--admin", action="store_true", help="sees every owner's work")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    keys_sub.add_parser("list", help="prefixes, owners and states (never the keys)")
    keys.set_defaults(func=_cmd_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    try:
        return int(args.func(settings, args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
