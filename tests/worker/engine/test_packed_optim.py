"""The stacked optimizer's update equals each member's own torch optimizer, step by step."""

from __future__ import annotations

import pytest
import torch

from tests.worker.engine.engine_factories import make_spec
from worker.engine.packed.optim import StackedOptimizer
from worker.engine.packed.shards import Shards
from worker.engine.packed.stacked import StackedMLP
from worker.engine.setup import build_optimizer
from zoo.models.mlp import MLP, MLPConfig

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


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("hyper", list(HYPER))
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_update_cut_into_shards_is_the_same_bits(optimizer, hyper) -> None:
    # Each shard's thread updates its own members (their slices of the buffers, in runs):
    # bit for bit the update of the whole.
    specs = [
        make_spec(optimizer={**optimizer, "lr": lr, "weight_decay": wd}) for lr, wd in HYPER[hyper]
    ]
    lrs = [lr for lr, _ in HYPER[hyper]]
    torch.manual_seed(0)
    start = _models()
    grads = [torch.randn(StackedMLP(start).grad.shape) for _ in range(4)]
    finals = []
    for sharded in (False, True):
        stacked = StackedMLP(start)
        opt = StackedOptimizer(stacked, specs)
        opt.load_members([build_optimizer(spec, m) for spec, m in zip(specs, start, strict=True)])
        shards = Shards(torch.device("cpu"))
        assert shards.threads == 2
        shards.start()
        try:
            for g in grads:
                stacked.grad.copy_(g)
                if not sharded:
                    opt.step(lrs)
                    continue
                update = opt.begin(lrs)
                parts = shards.map(lambda s, update=update: update(range(3)[s]), 3)
                assert len(parts) == 2  # members 0 and 1, 2 on two threads
        finally:
            shards.close()
        finals.append([stacked.flat.clone(), *(v.clone() for v in opt.state.values())])
    assert torch.get_num_threads() == 2  # restored by close
    for a, b in zip(*finals, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("optimizer", OPTIMIZERS[:3])
def test_a_member_left_out_of_the_update_keeps_its_slices(optimizer) -> None:
    # A member whose loss was not finite is not updated (it leaves the pack); the others
    # are updated as if it were not there.
    specs = [make_spec(optimizer={**optimizer, "lr": 0.01}) for _ in range(3)]
    torch.manual_seed(0)
    start = _models()
    grad = torch.randn(StackedMLP(start).grad.shape)
    finals = []
    for members in ([0, 1, 2], [0, 2]):
        stacked = StackedMLP(start)
        opt = StackedOptimizer(stacked, specs)
        opt.load_members([build_optimizer(spec, m) for spec, m in zip(specs, start, strict=True)])
        stacked.grad.copy_(grad)
        opt.begin([0.01] * 3)(members)
        finals.append([stacked.split(stacked.flat), opt.state])
    (whole, whole_state), (part, part_state) = finals
    before = StackedMLP(start).split(StackedMLP(start).flat)
    for w, p, b in zip(whole, part, before, strict=True):
        assert torch.equal(p[[0, 2]], w[[0, 2]])
        assert torch.equal(p[1], b[1])
        assert not torch.equal(w[1], b[1])
    for key, flat in part_state.items():
        for w, p in zip(stacked.split(whole_state[key]), stacked.split(flat), strict=True):
            assert torch.equal(p[[0, 2]], w[[0, 2]])
            assert not p[1].any()  # its state never written


def test_shards_cut_members_evenly_and_keep_the_order() -> None:
    shards = Shards(torch.device("cpu"))
    shards.threads = 3
    assert shards.slices(7) == [slice(0, 2), slice(2, 5), slice(5, 7)]
    assert shards.slices(2) == [slice(0, 1), slice(1, 2)]
    assert Shards(torch.device("meta")).threads == 1  # not a CPU: one shard, as before
    shards.close()
