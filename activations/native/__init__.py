"""One-pass float32 CPU kernels for the noisy hard units and nrelu, built on first use.

The block kernels (``activations.blocks``) keep a unit's temporaries in cache, but still
run a dozen ATen ops per block, each a pass over the block and a dispatch. ``units.c`` does
the same arithmetic element by element in one loop: a forward reads x and the noise and
writes the output over the noise, a backward reads x, the regenerated noise and the
upstream gradient and writes dL/dx over the noise. The noise itself is drawn as before
(``noise.sample``, chunked and parallel), so the units' random streams do not change.

The source is compiled once per machine with the C compiler on PATH (``$CC``, else ``cc``)
into a cache folder (``$ACTLAB_NATIVE_CACHE``, else ``~/.cache/actlab/native``), keyed by
the source, the flags and the CPU's feature flags (it is built with ``-march=native``).
Where no compiler is found or the build fails, ``available`` is False and the units take
the block path, with a warning logged once. ``ACTLAB_NATIVE=0`` turns the kernels off.

Determinism: each call handles a fixed span of rows on one thread of ``noise.executor()``
(ctypes releases the GIL); the spans follow the tensor's shape, never the thread count, and
the per-span partial sums of dL/dp are added in span order, so a seed gives the same bits
on one thread or many.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from .. import hard_dense, noise
from ..base import HardSpec

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("units.c")
FLAGS = (
    "-O3",
    "-march=native",
    "-ffp-contract=off",  # the same expression gives the same bits wherever it appears
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fPIC",
    "-shared",
)
# Elements per call: the spans depend on the shape alone; 64 spans for 16M elements.
SPAN = 1 << 18

_F, _I, _P, _D = ctypes.c_float, ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)
_SIGNATURES: dict[str, list[type]] = {
    "hard_forward": [_P, _P, _P, _I, _I, _I, _F, _F, _F, _F, _F, ctypes.c_int],
    "hard_forward_flat": [_P, _P, _F, _I, _I, _F, _F, _F, _F, _F, ctypes.c_int],
    "hard_backward": [_P, _P, _P, _P, _P, _I, _I, _I, _F, _F, _F, _P],
    "hard_backward_flat": [_P, _P, _P, _F, _F, _I, _I, _F, _F, _F, _P],
    "nrelu_forward": [_P, _P, _F, _I, _I],
    "nrelu_backward": [_P, _P, _P, _F, _I, _I],
    "hard_shrink": [_P, _I, _P, _I, _I, _F],
    "hard_small_forward": [
        _P,
        _I,
        _P,
        _P,
        _I,
        _P,
        _P,
        _I,
        _P,
        _I,
        _I,
        _F,
        _F,
        _F,
        _F,
        ctypes.c_int,
        ctypes.c_int,
    ],
    "hard_small_backward": [_P, _P, _P, _P, _I, _P, _P, _I, _I, _F, _F, _F, _F, ctypes.c_int],
}
_RETURNS: dict[str, type] = {
    "hard_shrink": ctypes.c_int64,
    "hard_small_forward": ctypes.c_int,
    "hard_small_backward": ctypes.c_int,
}

_lock = threading.Lock()
_state: dict[str, ctypes.CDLL | None] = {}


def _cache_dir() -> Path:
    configured = os.environ.get("ACTLAB_NATIVE_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "actlab" / "native"


def _cpu_flags() -> str:
    """The CPU's feature flags (a -march=native build runs only where they are all there)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def build(cache: Path | None = None, extra: Sequence[str] = ()) -> Path:
    """Compile ``units.c`` for this machine (once: a cached build is reused); its path.

    ``extra`` flags follow ``FLAGS`` (the tests build a variant without AVX-512). Raises
    ``RuntimeError`` with the compiler's message when no compiler is found or it fails.
    """
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler: set CC or install cc/gcc")
    flags = (*FLAGS, *extra)
    named = (" ".join(flags), cc, platform.machine(), _cpu_flags())
    digest = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), *(v.encode() for v in named)]))
    key = digest.hexdigest()[:16]
    folder = cache or _cache_dir()
    target = folder / f"units-{key}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    # A unique temporary name, then an atomic rename: concurrent workers may build at once.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *flags, "-o", tmp, str(SOURCE), "-lm"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{cc} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None (turned off, no compiler, or a failed build: logged)."""
    if "lib" in _state:
        return _state["lib"]
    with _lock:
        if "lib" not in _state:
            _state["lib"] = _load()
    return _state["lib"]


def _load() -> ctypes.CDLL | None:
    if os.environ.get("ACTLAB_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        return load(build())
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("native CPU kernels unavailable, the noisy units take the block path: %s", exc)
        return None


def load(path: Path) -> ctypes.CDLL:
    """A built library with its functions' signatures declared."""
    lib = ctypes.CDLL(str(path))
    for name, args in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, _RETURNS.get(name)
    return lib


def use(lib: ctypes.CDLL | None) -> None:
    """Make ``lib`` the library the units call (tests: a variant build, or None for off)."""
    with _lock:
        _state["lib"] = lib


def reset() -> None:
    """Forget the loaded library (tests: after changing ``ACTLAB_NATIVE`` or the cache)."""
    with _lock:
        _state.clear()


def available(*tensors: Tensor) -> bool:
    """Whether the kernels take these tensors: non-empty contiguous float32 on the CPU, built."""
    for t in tensors:
        cpu32 = t.device.type == "cpu" and t.dtype == torch.float32
        if not cpu32 or not t.is_contiguous() or t.numel() == 0:
            return False
    return library() is not None


def _spans(rows: int, width: int) -> list[tuple[int, int]]:
    step = max(1, SPAN // max(width, 1))
    return [(i, min(i + step, rows)) for i in range(0, rows, step)]


def _run(call: Callable[[int, tuple[int, int]], None], spans: Sequence[tuple[int, int]]) -> None:
    """``call(index, span)`` for every span, on the pool when there are several."""
    if len(spans) < 2 or torch.get_num_threads() < 2:
        for index, span in enumerate(spans):
            call(index, span)
        return
    list(noise.executor().map(call, range(len(spans)), spans))


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def _sign(v: float) -> float:
    return float((v > 0) - (v < 0))


def _row(x: Tensor) -> Tensor:
    """One row of x (dim 0), over which a per-channel p broadcasts: x itself when 1-D."""
    return x[:1] if x.dim() >= 2 else x


def _per_channel(x: Tensor, p: Tensor, scale: float) -> tuple[Tensor, int, int]:
    """(scale * |p| broadcast to one row of x as a contiguous [width] row, rows, width)."""
    rows = x.shape[0] if x.dim() >= 2 else 1
    width = x.numel() // rows
    row = p.detach().expand_as(_row(x)).reshape(width).abs().mul(scale).contiguous()
    return row.to(torch.float32), rows, width


def hard_forward(
    x: Tensor, p: Tensor, spec: HardSpec, alpha: float, c: float, xi: Tensor
) -> Tensor:
    """phi(x, xi) of a noisy hard unit, written into (and returning) ``xi``."""
    lib = library()
    assert lib is not None
    k, coefk = spec.slope, _sign(1.0 - alpha) * c / spec.slope
    affine = int(k != 1.0 or spec.offset != 0.0)
    consts = (spec.threshold, alpha, coefk, k, spec.offset, affine)
    if p.numel() == 1:
        pk = -k * abs(float(p.detach().reshape(())))

        def flat(_: int, span: tuple[int, int]) -> None:
            lib.hard_forward_flat(_ptr(x), _ptr(xi), pk, *span, *consts)

        _run(flat, _spans(x.numel(), 1))
        return xi
    pk_row, rows, width = _per_channel(x, p, -k)

    def block(_: int, span: tuple[int, int]) -> None:
        lib.hard_forward(_ptr(x), _ptr(xi), _ptr(pk_row), *span, width, *consts)

    _run(block, _spans(rows, width))
    return xi


def hard_backward(
    x: Tensor,
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    xi: Tensor,
    grad: Tensor,
    need_p: bool,
) -> tuple[Tensor, Tensor | None]:
    """(dL/dx written into ``xi``, dL/dp shaped like ``p`` or None) for upstream ``grad``."""
    lib = library()
    assert lib is not None
    g = grad.contiguous()
    if g.dtype != torch.float32:
        g = g.float()
    k, coef = spec.slope, _sign(1.0 - alpha) * c / 2.0
    base, lin = (1.0 - alpha) * k, alpha * k
    flat = p.numel() == 1
    if flat:
        rows, width = x.numel(), 1
    else:
        pk_row, rows, width = _per_channel(x, p, -k)
        sr_row = pk_row * coef  # -p*k*dxi = sr * R: |p| * (-coef * k)
    spans = _spans(rows, width)
    parts = torch.zeros(len(spans), width, dtype=torch.float64) if need_p else None

    def part_ptr(index: int) -> int | None:
        return None if parts is None else _ptr(parts[index])

    if flat:
        magnitude = abs(float(p.detach().reshape(())))
        pk, sr = -k * magnitude, -coef * k * magnitude

        def run_flat(index: int, span: tuple[int, int]) -> None:
            consts = (spec.threshold, base, lin, part_ptr(index))
            lib.hard_backward_flat(_ptr(x), _ptr(xi), _ptr(g), pk, sr, *span, *consts)

        _run(run_flat, spans)
    else:

        def run_block(index: int, span: tuple[int, int]) -> None:
            lib.hard_backward(
                _ptr(x),
                _ptr(xi),
                _ptr(g),
                _ptr(pk_row),
                _ptr(sr_row),
                *span,
                width,
                spec.threshold,
                base,
                lin,
                part_ptr(index),
            )

        _run(run_block, spans)
    if parts is None:
        return xi, None
    total = parts[0].clone()
    for row in parts[1:]:  # in span order: the same bits whatever the thread count
        total.add_(row)
    if flat:
        summed = total.sum().reshape(p.shape)
    else:
        summed = total.view(_row(x).shape).sum_to_size(p.shape)
    # d phi/dp = dxi*Delta = sgn(1 - alpha)*sgn(p)*(c/2)*R*(-k*s).
    return xi, summed.to(p.dtype).mul_(torch.sign(p.detach()) * (-coef * k))


def nrelu_forward(x: Tensor, scale: float, z: Tensor) -> Tensor:
    """max(0, x + scale*sqrt(sigmoid(x))*z), written into (and returning) ``z``."""
    lib = library()
    assert lib is not None

    def call(_: int, span: tuple[int, int]) -> None:
        lib.nrelu_forward(_ptr(x), _ptr(z), scale, *span)

    _run(call, _spans(x.numel(), 1))
    return z


def nrelu_backward(x: Tensor, scale: float, z: Tensor, grad: Tensor) -> Tensor:
    """nrelu's pathwise dL/dx (z held fixed), written into (and returning) ``z``."""
    lib = library()
    assert lib is not None
    g = grad.contiguous()
    if g.dtype != torch.float32:
        g = g.float()

    def call(_: int, span: tuple[int, int]) -> None:
        lib.nrelu_backward(_ptr(x), _ptr(z), _ptr(g), scale, *span)

    _run(call, _spans(x.numel(), 1))
    return z


# ---- Small tensors (under blocks.WHOLE elements: a recurrent gate's), as ``hard_dense`` ----


def small_available(x: Tensor) -> bool:
    """Whether the small-tensor kernels take ``x``: float32 on the CPU, contiguous or a
    column slice of a matrix (rows with unit stride), and built."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() == 0:
        return False
    if not (x.is_contiguous() or (x.dim() == 2 and x.stride(1) == 1)):
        return False
    return library() is not None


def _matrix(x: Tensor) -> tuple[int, int, int]:
    """(rows, width, row stride) of x seen as [rows, width] (rows: dim 0)."""
    if x.dim() == 2:
        return x.shape[0], x.shape[1], x.stride(0)
    rows = x.shape[0] if x.dim() >= 2 else 1
    width = x.numel() // rows
    return rows, width, width


def _p_arg(s: Tensor, p: Tensor) -> tuple[Tensor, int, bool]:
    """(p as the kernels read it, its stride, whether it was broadcast to a row of ``s``).

    A scalar p is read once (stride 0); a p with one value per column of [rows, width]
    (a recurrent gate's [units]) as it is (stride 1); any other (a conv's [1, C, 1, 1]) is
    broadcast to one row of ``s`` first.
    """
    p = p.detach()
    if p.numel() == 1:
        return p.reshape(1).to(torch.float32), 0, False
    row = s[:1] if s.dim() >= 2 else s
    if p.numel() == row.numel() and p.dtype == torch.float32 and p.is_contiguous():
        return p, 1, False
    return p.expand_as(row).reshape(row.numel()).to(torch.float32).contiguous(), 1, True


def _checked(status: int) -> None:
    if status == -1:
        raise MemoryError("native kernel: out of memory for its row buffers")
    if status != 0:
        raise RuntimeError(f"native kernel: the saturated elements miscounted ({status})")


def hard_small_forward(
    x: Tensor,
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    kind: str,
    gen: torch.Generator | None,
) -> tuple[Tensor, tuple[Tensor, ...], Tensor | None]:
    """``hard_dense.forward`` in two native calls: the same draws, the same tensors kept."""
    lib = library()
    assert lib is not None
    rows, width, ld = _matrix(x)
    s = torch.empty(x.shape, dtype=x.dtype)
    n = lib.hard_shrink(_ptr(x), ld, _ptr(s), rows, width, spec.threshold)
    if n == 0:
        return spec.linear(x), (s,), None
    state, draws = None, None
    if hard_dense.draws_saturated_only(n, x.numel()):
        xi, draws = torch.empty_like(s), noise.sample(kind, s.new_empty(n), gen)
    else:
        state = noise.rng_state(gen, x.device)
        xi = noise.sample(kind, s, gen)
    k = spec.slope
    pp, pstride, _ = _p_arg(s, p)
    y = torch.empty_like(s)
    affine = int(k != 1.0 or spec.offset != 0.0)
    coefk = _sign(1.0 - alpha) * c / k
    _checked(
        lib.hard_small_forward(
            _ptr(x),
            ld,
            _ptr(s),
            None if draws is None else _ptr(draws),
            n,
            _ptr(xi),
            _ptr(pp),
            pstride,
            _ptr(y),
            rows,
            width,
            alpha,
            coefk,
            k,
            spec.offset,
            affine,
            int(state is None),
        )
    )
    if state is not None:
        return y, (s,), state
    return y, (s, xi), None  # xi now holds r


def hard_small_backward(
    saved: tuple[Tensor, ...],
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    kind: str,
    state: Tensor | None,
    grad: Tensor,
    need_p: bool,
) -> tuple[Tensor, Tensor | None]:
    """``hard_dense.backward`` in one native call (after the redraw of a full draw)."""
    lib = library()
    assert lib is not None
    s = saved[0]
    k, coef = spec.slope, _sign(1.0 - alpha) * 2.0 * c
    if len(saved) == 2:
        rx, from_xi = saved[1], 0
    else:
        assert state is not None, "a full draw keeps the generator state"
        rx, from_xi = noise.resample(kind, s, state), 1
    rows, width, _ = _matrix(s)
    g = grad.contiguous()
    pp, pstride, broadcast = _p_arg(s, p)
    out = torch.empty_like(s)
    dp = torch.empty_like(pp) if need_p else None
    _checked(
        lib.hard_small_backward(
            _ptr(s),
            _ptr(rx),
            _ptr(g),
            _ptr(pp),
            pstride,
            _ptr(out),
            None if dp is None else _ptr(dp),
            rows,
            width,
            alpha,
            k,
            -coef * k,
            -coef * k,
            from_xi,
        )
    )
    if dp is None:
        return out, None
    if broadcast:  # one value per element of a row: summed to p's shape
        row = s[:1] if s.dim() >= 2 else s
        return out, dp.view(row.shape).sum_to_size(p.shape).to(p.dtype)
    return out, dp.view(p.shape).to(p.dtype)
