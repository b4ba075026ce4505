"""Checkpoints: atomic, self-describing (spec inside) and complete enough to resume bitwise.

A checkpoint holds the spec, model and optimizer state, both schedules, every RNG state
(python, numpy, torch CPU and CUDA, and the run's data-order and noise generators) and the
loop position (epoch, permutation, batch index, running train sums, early stopping, step,
elapsed time).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worker.engine.errors import TrainingError
from worker.engine.state import LoopState

FORMAT_VERSION = 1


def capture_rng(data_gen: torch.Generator, noise_gen: torch.Generator) -> dict[str, Any]:
    return {
        "python": _pack_python_state(random.getstate()),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "data": data_gen.get_state(),
        "noise": noise_gen.get_state(),
    }


def restore_rng(
    state: dict[str, Any], data_gen: torch.Generator, noise_gen: torch.Generator
) -> None:
    random.setstate(_unpack_python_state(state["python"]))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    data_gen.set_state(state["data"])
    noise_gen.set_state(state["noise"])


def _pack_python_state(state: tuple[Any, ...]) -> tuple[Any, ...]:
    # 625 ints pickled one by one cost more than the model here; one array pickles at once.
    version, internal, gauss = state
    return version, np.asarray(internal, dtype=np.int64), gauss


def _unpack_python_state(state: tuple[Any, ...]) -> tuple[Any, ...]:
    version, internal, gauss = state
    return version, tuple(int(v) for v in internal), gauss


def stage(run: Any, loop: LoopState, path: Path, *, durable: bool = True) -> Path:
    """Write the run's full state to a tmp file beside `path` and return the tmp file;
    `os.replace(tmp, path)` commits it atomically.

    A pack stages every member's checkpoint, then commits them all: a kill while the files
    are written (milliseconds) leaves every member at its last step, and only one between
    the renames (microseconds) leaves members at different steps.

    `durable` adds an fsync (about 7 ms here, more than a small epoch): periodic checkpoints
    skip it, since a killed process loses nothing the page cache holds, and only a machine
    crash can leave a torn file, which `load` then refuses and training starts over.
    """
    payload = {
        "format": FORMAT_VERSION,
        "spec": run.spec.model_dump(mode="json"),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "noise_schedule": run.noise_schedule.state_dict(),
        "lr_schedule": run.lr_schedule.state_dict(),
        "rng": capture_rng(run.data_gen, run.noise_gen),
        "loop": loop.state_dict(),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


class UnreadableCheckpoint(TrainingError):
    """The file exists but cannot be read (torn by a machine crash, or not ours)."""


def load(path: Path) -> dict[str, Any]:
    try:
        # Our own files: they hold python/numpy RNG states, which weights_only cannot unpickle.
        payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise UnreadableCheckpoint(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(payload, dict):
        raise UnreadableCheckpoint(f"{path}: not an actlab checkpoint")
    if payload.get("format") != FORMAT_VERSION:
        raise TrainingError(f"{path}: unsupported checkpoint format {payload.get('format')}")
    return payload


def restore(run: Any, payload: dict[str, Any]) -> LoopState:
    """Put a loaded checkpoint back into a freshly built run; return the loop position."""
    if payload["spec"] != run.spec.model_dump(mode="json"):
        raise TrainingError("checkpoint was written for a different spec; refusing to resume")
    run.model.load_state_dict(payload["model"])
    run.optimizer.load_state_dict(payload["optimizer"])
    run.noise_schedule.load_state_dict(payload["noise_schedule"])
    run.lr_schedule.load_state_dict(payload["lr_schedule"])
    restore_rng(payload["rng"], run.data_gen, run.noise_gen)
    loop = LoopState.from_state_dict(payload["loop"])
    if loop.perm is not None:
        loop.perm = loop.perm.to(run.device)
    return loop


def export_safetensors(checkpoint_path: Path, out_path: Path) -> Path:
    """Write the checkpoint's model weights as safetensors, with the spec JSON in metadata."""
    from safetensors.torch import save_file

    payload = load(Path(checkpoint_path))
    tensors = {k: v.detach().contiguous() for k, v in payload["model"].items()}
    loop = payload["loop"]
    metadata = {
        "spec": json.dumps(payload["spec"], sort_keys=True),
        "step": str(loop["step"]),
        "epoch": str(loop["epoch"]),
        "format": "actlab-engine-1",
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_path), metadata=metadata)
    return out_path
