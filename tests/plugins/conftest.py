"""The example plugin (examples/actlab-example-plugin) installed into a directory of its own.

Child processes that should have the plugin get that directory on PYTHONPATH; the others
do not, so one test can run a worker with the package and one without.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

EXAMPLE = ROOT / "examples" / "actlab-example-plugin"


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed example plugin (its code and its entry points).

    Built from a copy, so that setuptools' build/ and egg-info never land in the checkout.
    """
    target = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-source") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert any(target.glob("actlab_example_plugin-*.dist-info")), list(target.iterdir())
    return target


def with_path(env: dict[str, str], *paths: Path) -> dict[str, str]:
    """`env` with `paths` after the checkout on PYTHONPATH."""
    return {**env, "PYTHONPATH": ":".join([env["PYTHONPATH"], *map(str, paths)])}
