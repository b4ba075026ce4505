"""Build, cache and load ``units.c``; say which tensors the kernels take.

The source is compiled once per machine with the C compiler on PATH (``$CC``, else ``cc``)
into a cache folder (``$ACTLAB_NATIVE_CACHE``, else ``~/.cache/actlab/native``), keyed by
the source, the flags and the CPU's feature flags (it is built with ``-march=native``).
Where no compiler is found or the build fails, ``library()`` is None and the units take
the ATen paths, with a warning logged once. ``ACTLAB_NATIVE=0`` turns the kernels off.
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
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger("activations.native")

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


def small_available(x: Tensor) -> bool:
    """Whether the small-tensor kernels take ``x``: float32 on the CPU, contiguous or a
    column slice of a matrix (rows with unit stride), and built."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() == 0:
        return False
    if not (x.is_contiguous() or (x.dim() == 2 and x.stride(1) == 1)):
        return False
    return library() is not None
