"""requirements/dev.lock covers pyproject.toml: each dependency pinned, hashed, in range."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT

tomllib = pytest.importorskip("tomllib")

LOCK = ROOT / "requirements" / "dev.lock"
# The platform the lock is resolved for (scripts/lock): CI's.
LOCK_ENVIRONMENT = {"python_version": "3.11", "sys_platform": "linux", "platform_machine": "x86_64"}
# Installed before the lock, in the build the machine needs (README).
UNLOCKED = {"torch"}


def _pins() -> dict[str, str]:
    text = LOCK.read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.M)
    }


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in lines]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name in UNLOCKED:
            continue
        if requirement.marker and not requirement.marker.evaluate(LOCK_ENVIRONMENT):
            continue
        assert name in pins, f"{name} is in pyproject.toml but not in the lock: run scripts/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} in the lock is outside {requirement.specifier}: run scripts/lock"
        )


def test_every_pin_is_hashed_and_torch_is_left_to_the_machine() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", LOCK.read_text())
    pinned = [block for block in blocks if re.match(r"[A-Za-z0-9_.-]+==", block)]
    assert len(pinned) > 50
    for block in pinned:
        assert "--hash=sha256:" in block, block.splitlines()[0]
    assert "torch" not in _pins()
