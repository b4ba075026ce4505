"""Models: every arch with several activations, shapes, size params, gate units, naming."""

from __future__ import annotations

import pytest
import torch

import activations
from core.spec import ExperimentSpec
from worker.engine.diagnostics import activation_layers, run_diagnostics
from worker.engine.evaluation import task_functions
from zoo.datasets.base import DatasetInfo
from zoo.models import build_model

VECTOR = DatasetInfo("mnist1d", "classification", (40,), 10)
SEQUENCE = DatasetInfo("adding", "regression", (12, 2), 0, is_sequence=True)
IMAGE = DatasetInfo("digits", "classification", (1, 8, 8), 10)
ACTIVATIONS = [
    {"name": "relu"},
    {"name": "noisy_relu", "params": {"sigma": 0.3}},
    {"name": "noisy_hard_tanh"},
    {"name": "tanh"},
]
MODELS = [
    {"arch": "mlp", "hidden": [16, 16], "batch_norm": True, "dropout": 0.1, "residual": True},
    {"arch": "cnn", "channels": [8, 8], "batch_norm": True},
    {"arch": "gru", "hidden_size": 8},
    {"arch": "lstm", "hidden_size": 8, "num_layers": 2},
]


def _spec(model: dict, activation: dict, **extra) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {"dataset": {"name": "mnist1d"}, "model": {**model, **extra}, "activation": activation}
    )


@pytest.mark.parametrize("info", [VECTOR, SEQUENCE, IMAGE], ids=lambda i: i.name)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a["name"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m["arch"])
def test_forward_backward(model: dict, activation: dict, info: DatasetInfo) -> None:
    net = build_model(_spec(model, activation), info)
    x = torch.randn(5, *info.input_shape)
    out = net(x)
    assert out.shape == (5, info.output_dim) and torch.isfinite(out).all()
    out.sum().backward()
    net.eval()
    assert torch.isfinite(net(x)).all()


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_gulcehre_recurrent_setting(arch: str) -> None:
    """Noisy hard-sigmoid gates and noisy hard-tanh candidates, per-unit p sized per gate."""
    gate = {"name": "noisy_hard_sigmoid"}
    spec = _spec(
        {"arch": arch, "hidden_size": 6}, {"name": "noisy_hard_tanh"}, gate_activation=gate
    )
    net = build_model(spec, SEQUENCE)
    cell = net.cells["layer1"]
    assert type(cell.gate).__name__ == "NoisyHardSigmoid"
    assert cell.gate.p.shape == ((2 if arch == "gru" else 3) * 6,)
    assert cell.act.p.shape == (6,)
    layers = activation_layers(net)
    assert {"layer1/gate", "layer1"} <= set(layers)
    x, y = torch.randn(4, 12, 2), torch.rand(4) * 2
    values, out = run_diagnostics(net, x, y, task_functions("regression")[0])
    assert out.shape == (4, 1)
    # snr is left out where the noise is zero (inputs all in the linear regime): it is infinite.
    assert {"act/layer1/gate/saturation", "grad/layer1/gate/norm", "act/layer1/saturation"} <= set(
        values
    )
    assert all(p.grad is None for p in net.parameters())  # diagnostics leave .grad alone


def test_size_params_get_the_layer_width() -> None:
    act = {"name": "noisy_relu", "params": {"learn_sigma": True, "num_channels": 1}}
    # An explicit value is kept; a missing one is filled (see the noisy_hard_tanh case above).
    net = build_model(_spec({"arch": "mlp", "hidden": [8]}, {"name": "noisy_hard_tanh"}), VECTOR)
    assert net.blocks.layer1.act.p.shape == (8,)
    explicit = build_model(_spec({"arch": "mlp", "hidden": [8]}, act), VECTOR)
    assert explicit.blocks.layer1.act.raw_sigma.shape == (1,)


def test_diagnostics_names_and_no_hooks_left() -> None:
    net = build_model(_spec(MODELS[0], {"name": "relu"}), VECTOR)
    x, y = torch.randn(32, 40), torch.randint(0, 10, (32,))
    values, _ = run_diagnostics(net, x, y, task_functions("classification")[0])
    for layer in ("layer1", "layer2"):
        assert {f"act/{layer}/sparsity", f"act/{layer}/dead_fraction", f"grad/{layer}/norm"} <= set(
            values
        )
        assert 0.0 <= values[f"act/{layer}/sparsity"] <= 1.0
    assert all(not m._forward_hooks for m in net.modules())
    assert net.training  # restored after the eval-mode pass


def test_learned_sigma_gets_the_layer_width() -> None:
    from core.spec import ExperimentSpec
    from tests.support import canonical_spec

    spec = ExperimentSpec.model_validate(
        canonical_spec(activation={"name": "noisy_relu", "params": {"learn_sigma": True}})
    )
    unit = spec.activation.build(37)
    assert unit.raw_sigma is not None and unit.raw_sigma.shape == (37,)


def test_diagnostics_cover_the_whole_split_whatever_the_batching() -> None:
    # Unit 0 fires for x > 0, unit 1 only for x > 2: present in the last example alone.
    net = torch.nn.Sequential(torch.nn.Linear(1, 2), activations.create("relu"))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -2.0]))
    x = torch.tensor([[1.0], [-1.0], [0.5], [3.0]])
    y = torch.zeros(4, 2)

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (out - target).square().mean()

    whole, out = run_diagnostics(net, x, y, loss)
    batched, out_batched = run_diagnostics(net, x, y, loss, batch_size=2)
    assert whole["act/1/dead_fraction"] == 0.0  # unit 1 lives, in the second batch only
    assert whole["act/1/sparsity"] == pytest.approx(4 / 8)
    assert batched.keys() == whole.keys()
    for name, value in whole.items():
        assert batched[name] == pytest.approx(value, rel=1e-12), name
    assert torch.equal(out, out_batched)
