"""Plugins that fail to import, take a built-in's name or declare bad parameters are
skipped and reported; the API and the worker start anyway. A good model plugin from the
same distribution still registers. A plugin that fails after registering leaves nothing
registered. With auth on, only an admin's key reads why a plugin failed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.settings import Settings
from service.catalogue.router import HIDDEN_ERROR
from tests.plugins.conftest import with_path
from tests.support import ROOT, Process, settings_env

pytestmark = pytest.mark.integration

ENTRY_POINTS = """\
[actlab.activations]
explodes = broken_plugins.explodes
interrupts = broken_plugins.interrupts
leaky = broken_plugins.leaks
quits = broken_plugins.quits
relu = broken_plugins.collides
wobbly = broken_plugins.bad_params
[actlab.datasets]
halts = broken_plugins.halts:Halts
moons = broken_plugins.datasets:Moons
[actlab.models]
tiny = broken_plugins.models:Tiny
"""
MODULES = {
    "explodes": "raise RuntimeError('boom at import')",
    "quits": "import sys\nsys.exit(3)",
    "interrupts": "raise KeyboardInterrupt",
    "halts": "raise SystemExit",
    "leaks": """
        from torch import nn
        from activations import register, schedules

        @register("leaky", description="registered, then its module fails", reference="none")
        class Leaky(nn.ReLU):
            pass

        @register("leaky_too", description="a second one", reference="none")
        class LeakyToo(nn.ReLU):
            pass

        schedules.register(schedules.Kind("leaky_ramp", "a third", lambda p, t: t))
        raise RuntimeError("failed after registering")
    """,
    "collides": """
        from torch import nn
        from activations import register

        @register("relu", description="a second relu", reference="none")
        class Relu(nn.ReLU):
            pass
    """,
    "bad_params": """
        from torch import nn
        from activations import Param, register

        @register("wobbly", description="w", reference="none",
                  params=(Param("p", "float", 5.0, 0.0, 1.0),))
        class Wobbly(nn.Identity):
            def __init__(self, p=5.0):
                super().__init__()
    """,
    "datasets": """
        from typing import Literal
        from core.spec.base import Dataset

        class Moons(Dataset):
            name: Literal["moons"]
    """,
    "models": """
        from typing import Literal
        from core.spec.base import Model

        class Tiny(Model):
            '''One linear layer and the activation.'''
            arch: Literal["tiny"]

            def build(self, info, act):
                import math
                from torch import nn
                return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(info.input_shape),
                                     info.output_dim), act(info.output_dim))
    """,
}
PROBE = """
import json
from fastapi.testclient import TestClient
from service.app import create_app
from core.settings import Settings
from service.catalogue.router import HIDDEN_ERROR
from core.spec import ExperimentSpec
from core.spec.estimate import footprint
from core.store.db import session_scope
from service import auth

settings = Settings()  # auth on: ACTLAB_AUTH_ENABLED
with TestClient(create_app(settings)) as client:
    with session_scope(settings.resolved_database_url) as session:
        admin = auth.create_key(session, owner="root", admin=True)
        user = auth.create_key(session, owner="alice")
    client.headers["Authorization"] = f"Bearer {admin}"
    out = {"healthz": client.get("/healthz", headers={"Authorization": ""}).json(),
           "plugins_without_key": client.get("/v1/plugins", headers={"Authorization": ""}).text,
           "plugins_for_user": client.get("/v1/plugins",
                                          headers={"Authorization": f"Bearer {user}"}).json(),
           "plugins": client.get("/v1/plugins").json(),
           "models": [m["name"] for m in client.get("/v1/models").json()],
           "activations": [a["name"] for a in client.get("/v1/activations").json()],
           "schedules": [s["name"] for s in client.get("/v1/schedules").json()]}
    leaky = {"dataset": {"name": "moons"}, "model": {"arch": "mlp"},
             "activation": {"name": "leaky_too"}}
    answer = client.post("/v1/experiments/preview", json=leaky)
    out["leaky_preview"] = [answer.status_code, answer.json().get("detail")]
    answer = client.post("/v1/experiments/preview", json={**leaky, "activation": {"name": "relu"}})
    out["relu_preview"] = answer.status_code
spec = ExperimentSpec.model_validate({"dataset": {"name": "moons"}, "model": {"arch": "tiny"},
                                      "activation": {"name": "relu"}})
out["tiny_parameters"] = footprint(spec).parameters
print(json.dumps(out))
"""


def _broken_site(root: Path) -> Path:
    info = root / "broken_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    package = root / "broken_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in MODULES.items():
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def test_broken_plugins_are_reported_and_do_not_stop_the_api(
    settings: Settings, tmp_path: Path
) -> None:
    env = with_path(settings_env(settings), _broken_site(tmp_path / "site"))
    env["ACTLAB_AUTH_ENABLED"] = "true"
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    problems = {p["name"]: p for p in out["plugins"] if p["error"] is not None}
    assert set(problems) == {
        "explodes",
        "interrupts",
        "leaky",
        "quits",
        "relu",
        "wobbly",
        "halts",
        "moons",
    }
    assert "boom at import" in problems["explodes"]["error"]
    # sys.exit() and KeyboardInterrupt at import are failures like any other.
    assert problems["quits"]["error"] == "SystemExit: 3"
    assert problems["halts"]["error"] == "SystemExit"
    assert problems["interrupts"]["error"] == "KeyboardInterrupt"
    assert "plugin activation 'quits' from broken-plugins 0.1" in run.stderr
    assert "plugin dataset 'halts' from broken-plugins 0.1" in run.stderr
    assert "failed after registering" in problems["leaky"]["error"]
    # What the failing plugin registered before it raised is gone: not listed, not usable.
    assert {"leaky", "leaky_too", "wobbly"}.isdisjoint(out["activations"])
    assert "leaky_ramp" not in out["schedules"]
    assert out["relu_preview"] == 200
    status, detail = out["leaky_preview"]
    assert status == 422 and "leaky_too" in detail, detail
    assert "already registered" in problems["relu"]["error"]
    assert (
        "bad parameters" in problems["wobbly"]["error"]
        and "[0.0, 1.0]" in problems["wobbly"]["error"]
    )
    assert "already registered" in problems["moons"]["error"]
    assert all(p["distribution"] == "broken-plugins 0.1" for p in problems.values())
    # Every failure is logged at start-up, naming the plugin and its distribution.
    assert "plugin activation 'explodes' from broken-plugins 0.1" in run.stderr
    # Liveness needs no key, so it counts the failures and shows none of their text; the
    # plugin list needs a key, and only an admin's shows why a plugin failed.
    assert out["healthz"] == {"status": "ok", "failed_plugins": len(problems)}
    assert '"status":401' in out["plugins_without_key"]
    assert "broken-plugins" not in out["plugins_without_key"]
    for_user = {p["name"]: p["error"] for p in out["plugins_for_user"]}
    assert for_user == {p["name"]: p["error"] and HIDDEN_ERROR for p in out["plugins"]}
    listed = {p["name"]: p["error"] for p in out["plugins"]}
    assert listed["tiny"] is None and out["models"][-1] == "tiny"
    assert out["tiny_parameters"] == 2 * 2 + 2  # Linear(2, 2) from the registration's build


def test_a_worker_starts_with_broken_plugins(settings: Settings, tmp_path: Path) -> None:
    env = with_path(settings_env(settings), _broken_site(tmp_path / "site"))
    args = [sys.executable, "-m", "actlab", "worker", "--name", "broken@test"]
    worker = Process(args, env, tmp_path / "worker.log")
    try:
        worker.wait_for(" ready.")
        assert "plugin activation 'explodes' from broken-plugins 0.1" in worker.output()
        assert "plugin activation 'quits' from broken-plugins 0.1" in worker.output()
    finally:
        worker.stop()
