"""The stacked optimizer's update equals each member's own torch optimizer, step by step."""

from __future__ import annotations

import pytest
import torch

from tests.worker.engine.engine_factories import make_spec
from worker.engine.models.mlp import MLP, MLPConfig
from worker.engine.packed.optim import StackedOptimizer
from worker.engine.packed.stacked import StackedMLP
from worker.engine.setup import build_optimizer

OPTIMIZERS = [
    {"name": "adam"},
    {"name": "adamw"},
    {"name": "sgd", "momentum": 0.9, "nesterov": True},
    {"name": "sgd"},
]
HYPER = {  # (lr, weight decay) per member: one group (the whole buffer), or one per member
    "alike": [(0.01, 0.0)] * 3,
    "different": [(0.01, 0.0), (0.005, 0.01), (0.02, 0.1)],
}


def _models() -> list[MLP]:
    cfg = MLPConfig(in_features=6, hidden=(5, 4), out_features=3)
    return [MLP(cfg, lambda n: torch.nn.ReLU()) for _ in range(3)]


@pytest.mark.parametrize("hyper", list(HYPER))
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_stacked_update_equals_each_members_own(optimizer, hyper) -> None:
    torch.manual_seed(0)
    specs = [
        make_spec(optimizer={**optimizer, "lr": lr, "weight_decay": wd}) for lr, wd in HYPER[hyper]
    ]
    alone = _models()
    stacked_models = _models()
    for a, s in zip(alone, stacked_models, strict=True):
        s.load_state_dict(a.state_dict())
    own = [build_optimizer(spec, m) for spec, m in zip(specs, alone, strict=True)]
    stacked = StackedMLP(stacked_models)
    opt = StackedOptimizer(stacked, specs)
    opt.load_members(
        [build_optimizer(spec, m) for spec, m in zip(specs, stacked_models, strict=True)]
    )
    for _ in range(5):
        grads = [[torch.randn_like(p) for p in m.parameters()] for m in alone]
        for m, o, g in zip(alone, own, grads, strict=True):
            for p, gp in zip(m.parameters(), g, strict=True):
                p.grad = gp.clone()
            o.step()
        for i, view in enumerate(stacked.split(stacked.grad)):
            view.copy_(torch.stack([g[i] for g in grads]))
        opt.step([lr for lr, _ in HYPER[hyper]])
    stacked.store_members()
    mine = [build_optimizer(spec, m) for spec, m in zip(specs, stacked_models, strict=True)]
    opt.store_members(mine)
    for a, s, o, o2 in zip(alone, stacked_models, own, mine, strict=True):
        for pa, ps in zip(a.parameters(), s.parameters(), strict=True):
            torch.testing.assert_close(ps, pa, rtol=1e-6, atol=1e-7)
        ref, got = o.state_dict()["state"], o2.state_dict()["state"]
        assert ref.keys() == got.keys()
        for key in ref:
            assert ref[key].keys() == got[key].keys()
            for name in ref[key]:
                torch.testing.assert_close(got[key][name], ref[key][name], rtol=1e-6, atol=1e-7)
