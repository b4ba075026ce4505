"""The README documents every setting, and .ci/run reads its test command from it."""

from __future__ import annotations

import re
import subprocess

import pytest

from core.settings import Settings
from tests.support import ROOT


def test_every_setting_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`ACTLAB_{name.upper()}`" in readme, f"ACTLAB_{name.upper()} undocumented"


@pytest.mark.parametrize(
    "name", ["install-command", "test-command", "backend-test-command", "kernel-command"]
)
def test_ci_runs_the_readme_commands(name: str) -> None:
    """.ci/run extracts each marked block exactly as the README shows it, and runs it."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- ci: {name} -->\n```bash\n(.+?)\n```", readme, re.DOTALL)
    assert match, f"README lacks the marked {name}"
    script = (ROOT / ".ci/run").read_text()
    extract = script[script.index("readme_block() {") : script.index("' README.md\n}") + 13]
    out = subprocess.run(
        ["bash", "-c", f'{extract}\nprintf %s "$(readme_block {name})"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == match.group(1)
    assert f'bash -c "${{command[{name}]}}"' in script


def test_the_second_pass_runs_the_backend_tests_on_postgres() -> None:
    readme = (ROOT / "README.md").read_text()
    backend = re.search(r"<!-- ci: backend-test-command -->\n```bash\n(.+?)\n```", readme)
    assert backend
    assert "ACTLAB_TEST_DATABASE_URL=postgresql" in backend.group(1)
    assert "ACTLAB_TEST_BROKER_URL=redis://" in backend.group(1)
    assert "-m backend" in backend.group(1)


# Spec and sweep files the README's commands name: `examples/spec.yaml`, `sweep.yaml`, ...
DOCUMENT = re.compile(r"(?<![\w/.-])([\w./-]+\.(?:ya?ml|json))\b")


def _documents(text: str) -> set[str]:
    """Every YAML or JSON file named in the README's code and inline code, lock files and
    compose files of the deployment aside."""
    code = "\n".join(re.findall(r"```.*?```|`[^`\n]+`", text, re.DOTALL))
    skip = ("/", "docker-compose", "deploy/")  # URL paths (`/openapi.json`), the deployment
    return {m for m in DOCUMENT.findall(code) if not m.startswith(skip)}


def test_every_spec_file_the_readme_names_exists_and_validates() -> None:
    """A reader who copies a command finds the file it names, and the server would take it."""
    from actlab.specs import load
    from core.spec import ExperimentSpec
    from service.sweeps import grid
    from service.sweeps.schemas import SweepCreate

    named = _documents((ROOT / "README.md").read_text())
    assert {"examples/spec.yaml", "examples/sweep.yaml"} <= named, named
    for name in sorted(named):
        path = ROOT / name
        assert path.is_file(), f"the README names {name}, which does not exist"
        doc = load(path)
        if "base_spec" in doc:
            members = [
                spec for _, specs in grid.expand(SweepCreate.model_validate(doc)) for spec in specs
            ]
            assert len(members) == len(doc["seeds"]) * len(grid.points(doc.get("grid") or {}))
        else:
            ExperimentSpec.model_validate(doc)
