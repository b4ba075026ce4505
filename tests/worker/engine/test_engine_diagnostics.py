"""run_diagnostics' definitions (docs/activations.md, "Diagnostics: definitions"): channels
as conv units, pooled and per-unit SNR, smooth saturation, all accumulated over batches."""

import numpy as np
import pytest
import torch

import activations
from activations import diagnostics as diag
from activations.base import TANH_SATURATION
from tests.worker.engine.engine_factories import Recorder, make_spec
from worker import engine
from worker.engine.diagnostics import run_diagnostics


def _loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out - target).square().mean()


class _Gain(torch.nn.Module):
    """x * 1 through a parameter, so the unit's output has a gradient to measure."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def _run(unit: torch.nn.Module, x: torch.Tensor, batch_size: int) -> dict[str, float]:
    # The unit sits at path "1", so its metrics are act/1/*.
    net = torch.nn.Sequential(_Gain(), unit)
    values, _ = run_diagnostics(net, x, torch.zeros_like(x), _loss, batch_size=batch_size)
    return values


def test_conv_dead_fraction_counts_channels_over_the_whole_split() -> None:
    # [batch 4, channels 3, positions 2]. Channel 0 fires only at position 1 of example 3
    # (the last batch of one); channel 1 everywhere; channel 2 never.
    x = -torch.ones(4, 3, 2)
    x[3, 0, 1] = 1.0
    x[:, 1] = 1.0
    values = _run(activations.create("relu"), x, batch_size=1)
    assert values["act/1/dead_fraction"] == pytest.approx(1 / 3)  # channel 2
    # By (channel, position): (0, 0), (2, 0), (2, 1) are dead, 3 of 6.
    assert values["act/1/dead_position_fraction"] == pytest.approx(3 / 6)
    assert values["act/1/sparsity"] == pytest.approx(15 / 24)


def test_dense_outputs_have_no_separate_position_figure() -> None:
    values = _run(activations.create("relu"), torch.tensor([[1.0, -1.0], [2.0, -3.0]]), 1)
    assert values["act/1/dead_fraction"] == pytest.approx(0.5)
    assert "act/1/dead_position_fraction" not in values


def test_pooled_and_per_unit_snr_over_batches() -> None:
    # Unit variances 300, 1, 1 (means all 20) and noise variance sigma^2 = 1: the pooled
    # figure is 302/3 = 100.67, the median unit's is 1.
    sign = torch.tensor([1.0, -1.0]).repeat(4)[:, None]
    x = 20.0 + sign * torch.tensor([300.0, 1.0, 1.0]).sqrt()
    values = _run(activations.create("noisy_relu", sigma=1.0), x, batch_size=3)
    signal = np.maximum(x.numpy().astype(np.float64), 0.0)
    assert values["act/1/snr"] == pytest.approx(np.var(signal), rel=1e-6)
    assert values["act/1/snr"] == pytest.approx(302 / 3, rel=1e-6)
    assert values["act/1/snr_unit_median"] == pytest.approx(np.median(np.var(signal, 0)), rel=1e-6)
    assert values["act/1/snr_unit_median"] == pytest.approx(1.0, rel=1e-6)


def test_per_unit_snr_of_a_conv_layer_is_per_channel_and_batch_independent() -> None:
    x = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(1))
    x = x * torch.tensor([[0.1], [1.0], [3.0], [10.0]])
    unit = activations.create("noisy_relu", sigma=0.5)
    whole, batched = _run(unit, x, batch_size=6), _run(unit, x, batch_size=4)
    signal = np.maximum(x.numpy().astype(np.float64), 0.0)
    per_channel = signal.transpose(1, 0, 2).reshape(4, -1).var(axis=1) / 0.25
    assert whole["act/1/snr_unit_median"] == pytest.approx(np.median(per_channel), rel=1e-5)
    assert batched["act/1/snr_unit_median"] == pytest.approx(whole["act/1/snr_unit_median"])
    assert batched["act/1/snr"] == pytest.approx(np.var(signal) / 0.25, rel=1e-5)


def test_tanh_layers_report_smooth_saturation() -> None:
    x = torch.randn(10, 7, generator=torch.Generator().manual_seed(2)) * 3
    values = _run(activations.create("tanh"), x, batch_size=4)
    expected = float((x.abs() > TANH_SATURATION).float().mean())
    assert values["act/1/saturation"] == pytest.approx(expected)
    assert 0.0 < expected < 1.0


def test_per_unit_snr_is_left_out_past_snr_max_like_the_pooled_one() -> None:
    from worker.engine.diagnostics import SNR_MAX, _layer_values, _LayerStats

    def values(noise_var: float) -> dict[str, float]:
        # Two samples of one unit, signal 0 and 2: variance 1.
        sums = (torch.tensor([2.0]), torch.tensor([4.0]), torch.tensor([2 * noise_var]))
        st = _LayerStats(signal_sum=2.0, signal_sq=4.0, noise_var_sum=2 * noise_var, seen=2)
        st.has_snr, st.unit_sums, st.unit_samples = True, sums, 2
        return _layer_values("layer1", st)

    assert values(0.25)["act/layer1/snr_unit_median"] == pytest.approx(4.0)
    assert "act/layer1/snr_unit_median" not in values(0.1 / SNR_MAX)
    assert "act/layer1/snr_unit_median" not in values(0.0)


def test_output_side_snr_of_an_input_noise_unit_over_batches() -> None:
    # nanis_hard_tanh: noise c = 0.5 on the input where |x| >= 1, so the output noise is a
    # clipped Gaussian's variance (activations.censored), far below v = 0.25.
    x = torch.randn(9, 4, 3, generator=torch.Generator().manual_seed(5)) * 1.5
    unit = activations.create("nanis_hard_tanh", c=0.5)
    whole, batched = _run(unit, x, batch_size=9), _run(unit, x, batch_size=4)
    signal = x.clamp(-1, 1).double()
    out_var = unit.output_noise_var(x)
    expected = float(signal.var(unbiased=False) / out_var.mean())
    assert whole["act/1/snr_output"] == pytest.approx(expected, rel=1e-5)
    assert whole["act/1/snr_output"] == pytest.approx(diag.snr_output(unit, x), rel=1e-5)
    assert whole["act/1/snr_output"] > whole["act/1/snr"]  # the Poincare bound
    per_unit = diag.snr_output_unit_median(unit, x)
    assert whole["act/1/snr_output_unit_median"] == pytest.approx(per_unit, rel=1e-5)
    for name in ("snr", "snr_unit_median", "snr_output", "snr_output_unit_median"):
        assert batched[f"act/1/{name}"] == pytest.approx(whole[f"act/1/{name}"], rel=1e-9)


def test_output_side_snr_of_an_output_noise_unit_is_its_snr() -> None:
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(6))
    values = _run(activations.create("noisy_relu", sigma=0.5), x, batch_size=3)
    assert values["act/1/snr_output"] == pytest.approx(values["act/1/snr"], rel=1e-9)
    median = values["act/1/snr_output_unit_median"]
    assert median == pytest.approx(values["act/1/snr_unit_median"], rel=1e-9)


def test_output_side_snr_is_left_out_past_snr_max_and_without_noise() -> None:
    from worker.engine.diagnostics import SNR_MAX, _layer_values, _LayerStats

    def values(noise_var: float, out_var: float) -> dict[str, float]:
        # Two samples of one unit, signal 0 and 2: variance 1.
        sums = (torch.tensor([2.0]), torch.tensor([4.0]), torch.tensor([2 * noise_var]))
        st = _LayerStats(signal_sum=2.0, signal_sq=4.0, noise_var_sum=2 * noise_var, seen=2)
        st.has_snr, st.unit_sums, st.unit_samples = True, sums, 2
        st.has_snr_output, st.out_noise_var_sum = True, 2 * out_var
        st.unit_out_noise = torch.tensor([2 * out_var])
        return _layer_values("layer1", st)

    both = values(0.25, 0.01)
    assert both["act/layer1/snr"] == pytest.approx(4.0)
    assert both["act/layer1/snr_output"] == pytest.approx(100.0)
    assert both["act/layer1/snr_output_unit_median"] == pytest.approx(100.0)
    # The input-side noise reports, the output-side one (clipped away) is past SNR_MAX.
    clipped = values(0.25, 0.1 / SNR_MAX)
    assert "act/layer1/snr" in clipped
    assert "act/layer1/snr_output" not in clipped
    assert "act/layer1/snr_output_unit_median" not in clipped
    none = values(0.25, 0.0)
    assert "act/layer1/snr_output" not in none and "act/layer1/snr_output_unit_median" not in none


def test_no_output_side_snr_for_deterministic_units() -> None:
    values = _run(activations.create("relu"), torch.randn(4, 3), batch_size=2)
    assert not any("snr" in name for name in values)


def test_a_training_run_records_output_side_snr_for_an_input_noise_unit(data_dir) -> None:
    spec = make_spec(
        activation={"name": "nani_hard_tanh", "params": {"c": 0.5}},
        noise_schedule={"kind": "constant"},
        training={"epochs": 1},
    )
    rec = Recorder()
    engine.train(spec, callbacks=rec, data_dir=data_dir)
    last = rec.metrics[-1][2]
    for layer in ("layer1", "layer2"):
        # Slope <= 1: the clip lets through at most the input noise (docs/activations.md).
        assert last[f"act/{layer}/snr_output"] >= last[f"act/{layer}/snr"]
        assert last[f"act/{layer}/snr_output_unit_median"] >= last[f"act/{layer}/snr_unit_median"]
