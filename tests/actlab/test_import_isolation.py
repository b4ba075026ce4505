"""The client and the CLI's researcher verbs import no torch, SQLAlchemy or Celery."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support import ROOT

BLOCKED = (
    "torch",
    "sqlalchemy",
    "celery",
    "activations",
    "zoo",
    "core",
    "worker",
    "service",
    "scipy",
)

_BLOCKER = f"""
import sys
BLOCKED = {BLOCKED!r}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {{name}}")
        return None

sys.meta_path.insert(0, Blocker())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    script = _BLOCKER + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_client_imports_and_builds_without_the_server_stack() -> None:
    result = _run(
        """
        import actlab
        client = actlab.Client("http://127.0.0.1:9")
        try:
            client.experiments.get("exp_x")
        except actlab.ConnectionFailed as exc:
            print("refused:", exc)
        loaded = {m.split(".")[0] for m in sys.modules}
        print("heavy:", sorted(loaded & set(BLOCKED)))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "refused: cannot reach actlab at http://127.0.0.1:9" in result.stdout
    assert "heavy: []" in result.stdout


def test_the_blocker_does_block() -> None:
    result = _run("import sqlalchemy")
    assert result.returncode != 0 and "blocked import of sqlalchemy" in result.stderr


def test_help_and_ls_start_without_the_server_stack() -> None:
    result = _run(
        """
        from actlab.cli import main
        assert main(["--help"]) == 0
        code = main(["ls", "--url", "http://127.0.0.1:9"])
        print("ls exit", code)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "submit" in result.stdout and "sweep" in result.stdout and "up" in result.stdout
    assert "ls exit 2" in result.stdout
    assert "cannot reach actlab at http://127.0.0.1:9" in result.stderr


def test_a_usage_error_is_one_clear_message_without_a_traceback() -> None:
    for argv in (["ls", "--bogus"], ["show"], ["worker", "--bogus"], ["keys", "create"]):
        done = subprocess.run(
            [sys.executable, "-m", "actlab", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr, (argv, done.stderr)
        assert "Error" in done.stderr and "Usage: " in done.stderr, (argv, done.stderr)


def test_server_verbs_are_found_through_their_entry_points() -> None:
    """`actlab` knows the server's verbs by name and loads them from the `actlab.server`
    entry-point group: each name it lists is a command of the loaded apps."""
    import typer.main

    from actlab.cli import SERVER_VERBS, server_app

    command = typer.main.get_command(server_app())
    assert set(command.commands) == set(SERVER_VERBS)  # type: ignore[attr-defined]
