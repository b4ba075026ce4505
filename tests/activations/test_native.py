"""The native one-pass CPU kernels (``activations.native``) against the ATen paths they replace.

Large float32 tensors: against ``hard_blocks`` (nrelu's closed form: ``test_blocks.py``, in
float32). Small ones (a recurrent gate's): against ``hard_dense``, with its draws, its saved
tensors and its generator use. Also: the AVX-512 and portable builds agree bit for bit, a
missing compiler falls back to the block path with a warning, and a build is cached.
"""

import logging
import os

import pytest
import torch
from test_hard_sparse import sparse_input

import activations
from activations import blocks, hard_blocks, hard_dense, native, noise

UNITS = [("noisy_hard_tanh", "normal"), ("noisy_hard_sigmoid", "half_normal")]
TOL = {"rtol": 1e-5, "atol": 1e-5}

needs_native = pytest.mark.skipif(
    native.library() is None, reason="no C compiler here, or ACTLAB_NATIVE=0"
)


@pytest.fixture
def set_threads():
    """Set torch's intra-op thread count (and a pool of that size) for one test, then restore."""
    before = torch.get_num_threads()

    def set_to(count: int) -> None:
        torch.set_num_threads(count)
        noise._pool = None

    yield set_to
    torch.set_num_threads(before)
    noise._pool = None


@pytest.fixture
def restore_native():
    """Put the default library back after a test that swaps it."""
    yield
    native.reset()


def test_the_kernels_build_where_a_compiler_is_found():
    if native.loader._compiler() is None or os.environ.get("ACTLAB_NATIVE") == "0":
        pytest.skip("no C compiler, or the kernels are turned off")
    assert native.library() is not None
    assert native.available(torch.zeros(4))
    assert not native.available(torch.zeros(4, dtype=torch.float64))  # float64: block path
    assert not native.available(torch.zeros(4, 4).t())  # strided: block path


@needs_native
@pytest.mark.parametrize(("name", "kind"), UNITS)
@pytest.mark.parametrize(
    ("shape", "per_channel"),
    [
        ((5 * blocks.BLOCK + 7,), False),
        ((130, 7, 97), True),
        ((300, 700), False),
        ((40, 2000), True),
    ],
)
@pytest.mark.parametrize("threads", [1, 2])  # in turn, and on the pool (native/large.py)
def test_large_tensors_match_the_block_path(name, kind, shape, per_channel, threads, set_threads):
    set_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(shape) * 3
    assert x.numel() >= blocks.WHOLE
    unit = activations.create(name)
    s = unit._setting()
    channels = shape[1] if len(shape) > 1 else 1
    if per_channel:
        p = torch.linspace(-1.5, 2.5, channels).view(1, -1, *([1] * (len(shape) - 2)))
    else:
        p = torch.tensor(-0.7)
    grad = torch.randn(shape)
    xi = noise.sample(kind, x, torch.Generator().manual_seed(3))
    want_y = hard_blocks.forward(x, p, s.spec, s.alpha, s.c, xi.clone())
    got_y = native.hard_forward(x, p, s.spec, s.alpha, s.c, xi.clone())
    torch.testing.assert_close(got_y, want_y, **TOL)
    want = hard_blocks.backward(x, p, s.spec, s.alpha, s.c, xi.clone(), grad, True)
    got = native.hard_backward(x, p, s.spec, s.alpha, s.c, xi.clone(), grad, True)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **TOL)


@needs_native
def _small(module, x, p, unit, seed, grad):
    """(y, saved, generator state after, dL/dx, dL/dp) of a small-path module."""
    s, gen = unit._setting(), torch.Generator().manual_seed(seed)
    y, saved, state = module[0](x, p, s.spec, s.alpha, s.c, s.kind, gen)
    if len(saved) == 1 and state is None:
        return y, saved, gen.get_state(), None, None
    grads = module[1](saved, p, s.spec, s.alpha, s.c, s.kind, state, grad, True)
    return y, saved, gen.get_state(), *grads


NATIVE = (native.hard_small_forward, native.hard_small_backward)
DENSE = (hard_dense.forward, hard_dense.backward)


@needs_native
@pytest.mark.parametrize(("name", "kind"), UNITS)
@pytest.mark.parametrize("every", [20, 5, 2, 10**9])  # n draws (5%, 20%); full; none
@pytest.mark.parametrize(
    ("shape", "p_shape", "columns"),
    [
        ((100, 256), (256,), None),
        ((64, 48), (1, 48), None),
        ((10, 6, 7), (1, 6, 1), None),
        ((30, 9), (), None),
        ((64, 48), (48,), 64),  # a column slice of a [64, 64] matrix: an LSTM's gates
    ],
)
def test_small_tensors_match_hard_dense(name, kind, every, shape, p_shape, columns):
    unit = activations.create(name)
    wide = (shape[0], columns) if columns else shape
    base = sparse_input(wide, unit.spec.threshold, every=min(every, 10**6), dtype=torch.float32)
    if every == 10**9:
        base = base.clamp(-0.9 * unit.spec.threshold, 0.9 * unit.spec.threshold)
    x = base[:, : shape[1]] if columns else base
    assert x.numel() < blocks.WHOLE and x.is_contiguous() == (columns is None)
    n = p_shape[1] if len(p_shape) > 1 else (p_shape[0] if p_shape else 1)
    p = torch.linspace(-1.5, 2.5, n).reshape(p_shape)  # negative and zero slopes too
    grad = torch.randn(shape)
    got = _small(NATIVE, x, p, unit, 3, grad)
    want = _small(DENSE, x, p, unit, 3, grad)
    assert len(got[1]) == len(want[1])  # the same tensors kept for backward
    assert torch.equal(got[2], want[2])  # the same draws taken from the generator
    for a, b in zip((got[0], *got[1], *got[3:]), (want[0], *want[1], *want[3:]), strict=True):
        if a is None or b is None:
            assert a is b
            continue
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **TOL)


@needs_native
@pytest.mark.parametrize(("name", "kind"), UNITS)
def test_avx512_and_portable_builds_agree_bit_for_bit(name, kind, tmp_path, restore_native):
    if "avx512f" not in native.loader._cpu_flags().split():
        pytest.skip("no AVX-512 here: one build only")
    portable = native.load(native.build(tmp_path, extra=("-mno-avx512f",)))
    unit = activations.create(name, num_units=256)
    x = sparse_input((100, 256), unit.spec.threshold, every=16, dtype=torch.float32)
    big = torch.randn(300, 256) * 3

    def run():
        results = []
        for inp in (x, big):
            gen = torch.Generator().manual_seed(7)
            u = activations.create(name, num_units=256, generator=gen)
            xx = inp.clone().requires_grad_(True)
            u(xx).backward(torch.ones_like(inp))
            results += [u(inp).detach(), xx.grad, u.p.grad]
        return results

    fast = run()
    native.use(portable)
    slow = run()
    for a, b in zip(fast, slow, strict=True):
        assert torch.equal(a, b)


def test_without_a_compiler_the_units_take_the_block_path(
    monkeypatch, tmp_path, caplog, restore_native
):
    x = torch.randn(200, 400) * 3
    xx = x.clone().requires_grad_(True)

    def run():
        unit = activations.create("noisy_hard_tanh", generator=torch.Generator().manual_seed(2))
        y = unit(xx)
        y.backward(torch.ones_like(y))
        return y.detach(), xx.grad.clone(), unit.p.grad

    with_native = run()
    xx.grad = None
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("ACTLAB_NATIVE_CACHE", str(tmp_path / "cache"))
    native.reset()
    with caplog.at_level(logging.WARNING, logger="activations.native"):
        assert native.library() is None
    assert "block path" in caplog.text
    assert not native.available(x)
    for a, b in zip(run(), with_native, strict=True):
        torch.testing.assert_close(a, b, **TOL)


def test_actlab_native_0_turns_the_kernels_off(monkeypatch, restore_native):
    monkeypatch.setenv("ACTLAB_NATIVE", "0")
    native.reset()
    assert native.library() is None
    assert not native.available(torch.zeros(4))
    assert not native.small_available(torch.zeros(4))


@needs_native
def test_a_build_is_cached_and_reused(tmp_path):
    first = native.build(tmp_path)
    mtime = first.stat().st_mtime_ns
    assert native.build(tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left behind


@needs_native
def test_a_compiler_error_is_reported_with_its_message(monkeypatch, tmp_path):
    monkeypatch.setattr(native.loader, "FLAGS", (*native.FLAGS, "-fno-such-flag"))
    with pytest.raises(RuntimeError, match="no-such-flag"):
        native.build(tmp_path)
    assert list(tmp_path.iterdir()) == []


@needs_native
def test_the_unit_takes_the_native_small_path_for_float32():
    calls = []
    real = native.hard_small_forward

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    unit = activations.create("noisy_hard_sigmoid", num_units=48)
    x = sparse_input((64, 48), 2.0, every=20, dtype=torch.float32)
    try:
        native.hard_small_forward = spy
        unit(x)
    finally:
        native.hard_small_forward = real
    assert calls == [torch.Size([64, 48])]
