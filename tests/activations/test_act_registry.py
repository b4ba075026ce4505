"""Registry contract, plus properties every registered unit must have."""

import json

import pytest
import torch
from act_helpers import gradcheck_unit
from torch import nn

import activations
from activations.names import all_or_nothing
from activations.params import Param

NOISY = [e["name"] for e in activations.catalogue() if e["noisy"]]
KINKS = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])


def test_names_sorted_and_all_creatable():
    names = activations.names()
    assert names == sorted(names) and len(set(names)) == len(names)
    # The units the docs promise are there; how many others exist is not this test's business.
    promised = {"relu", "noisy_relu", "noisy_hard_tanh", "noisy_hard_sigmoid", "tanh", "sigmoid"}
    assert promised <= set(names)
    for name in names:
        assert isinstance(activations.create(name), nn.Module)


def test_aliases_and_get_activation():
    assert type(activations.create("swish")) is activations.get_activation("silu")
    assert activations.get_activation("HardTanh") is activations.get_activation("hard_tanh")
    assert activations.get_activation("noisyrelu") is activations.get_activation("noisy_relu")
    assert activations.get_activation(None) is nn.Identity
    assert activations.get_activation(nn.ReLU) is nn.ReLU


def test_unknown_name_lists_valid():
    with pytest.raises(activations.UnknownNameError) as err:
        activations.create("foo")
    assert err.value.name == "foo" and err.value.valid == activations.names()
    assert str(err.value).startswith("unknown activation 'foo'; valid: elu, gaussian_dropout,")
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


def test_duplicate_register_refused_and_override():
    with pytest.raises(ValueError, match="already registered"):
        activations.register("relu", description="x", reference="x")(nn.ReLU)
    with pytest.raises(ValueError, match="already registered"):
        activations.register("new_unit", aliases=("swish",), description="x", reference="x")(
            nn.ReLU
        )
    assert "new_unit" not in activations.names()
    original = activations.get_activation("relu")
    try:
        activations.register("relu", description="x", reference="x", override=True)(nn.ReLU)
        assert activations.get_activation("relu") is nn.ReLU
    finally:
        activations.register("relu", description="max(0, x).", reference="r", override=True)(
            original
        )


@pytest.mark.parametrize("raised", [RuntimeError("late"), SystemExit(3)])
def test_registrations_in_a_failed_block_are_all_taken_back(raised):
    """What a plugin registered before failing is undone in every registry, overrides too."""
    before = (activations.catalogue(), activations.schedules.names())
    relu = activations.get_activation("relu")
    with pytest.raises(type(raised)), all_or_nothing():
        activations.register("half_loaded", aliases=("half",), description="x", reference="x")(
            nn.ReLU
        )
        activations.register("relu", description="x", reference="x", override=True)(nn.Tanh)
        activations.schedules.register(activations.schedules.Kind("half_kind", "x", max))
        raise raised
    assert (activations.catalogue(), activations.schedules.names()) == before
    assert activations.get_activation("relu") is relu
    assert "half" not in activations.names()


def test_validate_params_normalises_and_names_bad_param():
    assert activations.validate_params("elu", {}) == {"alpha": 1.0}
    assert activations.validate_params("elu", {"alpha": 2}) == {"alpha": 2.0}
    cases = [
        ("noisy_relu", {"sigmaa": 1.0}, "sigmaa", "valid params: distribution"),
        ("noisy_relu", {"sigma": "big"}, "sigma", "must be a number"),
        ("noisy_relu", {"sigma": True}, "sigma", "must be a number"),
        ("noisy_relu", {"sigma": 11.0}, "sigma", r"\[0.0, 10.0\]"),
        ("noisy_relu", {"distribution": "cauchy"}, "distribution", "must be one of"),
        ("noisy_hard_tanh", {"num_units": 1.5}, "num_units", "must be an int"),
        ("prelu", {"num_parameters": 0}, "num_parameters", "must be in"),
    ]
    for name, params, param, message in cases:
        with pytest.raises(activations.ParamError, match=message) as err:
            activations.validate_params(name, params)
        assert err.value.param == param and f"'{param}'" in str(err.value)
        assert isinstance(err.value, ValueError)


def test_generator_only_for_noisy_units():
    with pytest.raises(activations.ParamError) as err:
        activations.create("relu", generator=torch.Generator())
    assert err.value.param == "generator"


def test_catalogue_is_json_and_complete():
    rows = json.loads(json.dumps(activations.catalogue()))
    assert [r["name"] for r in rows] == activations.names()
    keys = {"name", "aliases", "description", "noisy", "reference", "params"}
    pkeys = {"name", "type", "default", "min", "max", "choices", "description"}
    pkeys |= {"min_open", "max_open", "required"}
    for row in rows:
        assert set(row) == keys and row["description"] and row["reference"]
        assert all(set(p) == pkeys for p in row["params"])
    assert set(NOISY) >= {"noisy_relu", "nrelu", "noisy_hard_tanh", "rrelu", "gaussian_dropout"}


def test_param_spec_rejects_unknown_type():
    with pytest.raises(ValueError):
        Param("x", "complex")


def test_set_noise_scale_and_noisy_modules():
    model = nn.Sequential(
        nn.Linear(3, 4),
        activations.create("noisy_relu"),
        nn.Linear(4, 4),
        activations.create("noisy_hard_tanh"),
        activations.create("relu"),
    )
    found = activations.noisy_modules(model)
    assert [type(m).__name__ for m in found] == ["NoisyReLU", "NoisyHardTanh"]
    assert activations.set_noise_scale(model, 0.3) == 2
    assert all(m.noise_scale == 0.3 for m in found)


@pytest.mark.parametrize("name", activations.names())
def test_every_unit_has_hooks_and_follows_dtype(name):
    unit = activations.create(name)
    assert isinstance(unit.is_sparse_family, bool)
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        x = torch.randn(64, 8).to(dtype)
        assert unit(x).dtype == dtype
        mask = unit.saturation_mask(x)
        assert mask is None or (mask.dtype == torch.bool and mask.shape == x.shape)
    assert isinstance(unit, activations.NoisyActivation) == (name in NOISY)


@pytest.mark.parametrize("name", NOISY)
def test_noisy_unit_contract(name):
    x = torch.randn(256, 8, dtype=torch.float64) * 3
    a = activations.create(name, generator=torch.Generator().manual_seed(9))
    b = activations.create(name, generator=torch.Generator().manual_seed(9))
    ya, yb = a(x), b(x)
    assert torch.equal(ya, yb) and not torch.equal(ya, a(x))  # reproducible, yet random
    std = a.effective_noise_std(x)
    assert torch.as_tensor(std).max() > 0
    a.eval()
    assert torch.equal(a(x), a(x))  # eval is deterministic
    a.train()
    activations.set_noise_scale(a, 0.0)
    torch.testing.assert_close(a(x), a.eval()(x))  # no noise: train == eval
    assert torch.as_tensor(a.train().effective_noise_std(x)).max() == 0


@pytest.mark.parametrize("name", activations.names())
def test_gradcheck_every_unit(name):
    gen = torch.Generator().manual_seed(0)
    unit = activations.create(name, generator=gen) if name in NOISY else activations.create(name)
    x = torch.randn(24, dtype=torch.float64) * 2.5
    # Keep finite differences away from the kinks of the piecewise-linear units.
    near = (x[:, None] - KINKS.double()).abs().min(dim=1).values < 0.1
    x = torch.where(near, x + 0.25, x)
    assert gradcheck_unit(unit, x)


def test_errors_survive_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(activations.UnknownNameError("foo", ["a", "b"])))
    assert (err.name, err.valid, str(err)) == (
        "foo",
        ["a", "b"],
        "unknown activation 'foo'; valid: a, b",
    )
    perr = pickle.loads(pickle.dumps(activations.ParamError("sigma", "bad 'sigma'")))
    assert (perr.param, str(perr)) == ("sigma", "bad 'sigma'")


def test_catalogue_ranges_say_which_ends_are_open():
    (p,) = activations.registry.entry("gaussian_dropout").as_dict()["params"]
    assert (p["min"], p["max"], p["min_open"], p["max_open"]) == (0.0, 1.0, True, True)
    with pytest.raises(activations.ParamError):
        activations.create("gaussian_dropout", p=1.0)
