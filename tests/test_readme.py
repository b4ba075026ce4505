"""The README documents every setting, and .ci/run reads its test command from it."""

from __future__ import annotations

import re
import subprocess

from service.settings import Settings
from tests.support import ROOT


def test_every_setting_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`ACTLAB_{name.upper()}`" in readme, f"ACTLAB_{name.upper()} undocumented"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- ci: test-command -->\n```bash\n(.+?)\n```", readme)
    assert match, "README lacks the marked test command"
    script = (ROOT / ".ci/run").read_text()
    extract = script[script.index("test_command=$(") : script.index("README.md)") + 10]
    out = subprocess.run(
        ["bash", "-c", f'{extract}; printf %s "$test_command"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == match.group(1)
