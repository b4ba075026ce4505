"""Noise-scale schedules."""

import json
import math

import pytest

import activations
from activations import schedules


def test_names_and_catalogue():
    assert schedules.names() == [
        "constant", "cosine", "exponential", "inverse_sqrt", "linear", "step",
    ]  # fmt: skip
    json.dumps(schedules.catalogue())
    assert activations.schedules is schedules


@pytest.mark.parametrize(
    ("kind", "params", "points"),
    [
        ("constant", {"start": 0.7}, [(0, 0.7), (10**6, 0.7)]),
        ("linear", {"total": 100}, [(0, 1.0), (25, 0.75), (100, 0.0), (150, 0.0)]),
        ("cosine", {"start": 2.0, "end": 1.0, "total": 10}, [(0, 2.0), (5, 1.5), (10, 1.0)]),
        ("exponential", {"end": 0.01, "total": 2}, [(0, 1.0), (1, 0.1), (2, 0.01), (9, 0.01)]),
        ("exponential", {"rate": 0.5, "end": 0.1}, [(0, 1.0), (2, 0.25), (50, 0.1)]),
        ("step", {"step_size": 10, "gamma": 0.5}, [(0, 1.0), (9.9, 1.0), (10, 0.5), (25, 0.25)]),
        ("step", {"step_size": 1, "gamma": 0.1, "end": 0.05}, [(1, 0.1), (2, 0.05)]),
        ("inverse_sqrt", {"warmup": 4}, [(4, 1.0), (16, 0.5), (64, 0.25)]),
        ("inverse_sqrt", {}, [(0, 1.0), (1, 1.0), (4, 0.5), (100, 0.1)]),
        ("linear", {"start": 0.0, "end": 1.0, "total": 4}, [(1, 0.25), (9, 1.0)]),
    ],
)
def test_values_at_known_points(kind, params, points):
    sched = schedules.create(kind, **params)
    for t, expected in points:
        assert sched.advance_to(t) == pytest.approx(expected), (t, expected)


def test_warmup_ramps_from_zero():
    sched = schedules.create("linear", start=1.0, end=0.0, warmup=10, total=110)
    assert [sched.advance_to(t) for t in (0, 5, 10, 60, 110)] == pytest.approx([0, 0.5, 1, 0.5, 0])
    assert schedules.create("constant", start=2.0, warmup=4).advance_to(1) == pytest.approx(0.5)


def test_state_dict_round_trip():
    sched = schedules.create("cosine", start=0.5, end=0.1, total=50, warmup=5)
    sched.advance_to(17)
    state = json.loads(json.dumps(sched.state_dict()))
    fresh = schedules.create("cosine", total=1)
    fresh.load_state_dict(state)
    assert fresh.params == sched.params and fresh.last_t == 17
    assert fresh.advance_to(30) == sched.advance_to(30)
    with pytest.raises(ValueError):
        schedules.create("linear", total=3).load_state_dict(state)


def test_preview_is_evenly_spaced_and_records_nothing():
    sched = schedules.create("linear", total=10)
    points = sched.preview(3)
    assert points == [(0.0, 1.0), (5.0, 0.5), (10.0, 0.0)]
    assert sched.last_t is None
    assert [t for t, _ in sched.preview(5, total=100)] == [0, 25, 50, 75, 100]
    assert len(schedules.create("step", step_size=3).preview(7)) == 7


def test_step_defaults_to_three_drops_over_the_run_not_one_per_step():
    sched = schedules.create("step", total=400, gamma=0.5)
    assert [sched.at(t) for t in (0, 99, 100, 200, 300, 399)] == [1, 1, 0.5, 0.25, 0.125, 0.125]
    with pytest.raises(ValueError, match="total"):
        schedules.create("step")  # without total, step_size must be given


def test_errors_name_the_param():
    cases = [
        ("linear", {}, "total"),
        ("cosine", {"total": 5, "warmup": 5}, "total"),
        ("exponential", {"total": 5}, "end"),
        ("step", {"step_size": 0}, "step_size"),
        ("linear", {"total": 5, "bogus": 1}, "bogus"),
    ]
    for kind, params, param in cases:
        with pytest.raises(activations.ParamError) as err:
            schedules.validate_params(kind, params)
        assert err.value.param == param
    with pytest.raises(activations.UnknownNameError, match="unknown schedule 'sawtooth'"):
        schedules.create("sawtooth")


def test_drives_noise_scale():
    model = activations.create("noisy_relu")
    sched = schedules.create("exponential", end=0.01, total=100)
    activations.set_noise_scale(model, sched.advance_to(50))
    assert model.noise_scale == pytest.approx(math.sqrt(0.01))


def test_a_power_past_float_range_saturates_at_the_bound_instead_of_raising():
    growing = schedules.create("exponential", start=0.5, end=2.0, rate=10.0, total=None)
    assert growing.advance_to(10**6) == 2.0  # 0.5 * 10**1e6 overflows a float: bounded by end
    shrinking = schedules.create("step", start=1.0, end=0.0, step_size=1, gamma=1e-300)
    assert shrinking.advance_to(10**6) == 0.0
