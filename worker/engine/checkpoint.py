"""Checkpoints: atomic, self-describing (spec inside) and complete enough to resume bitwise.

A checkpoint holds the spec, model and optimizer state, both schedules, every RNG state
(python, numpy, torch CPU and CUDA, and the run's data-order and noise generators) and the
loop position (epoch, permutation, batch index, running train sums, early stopping, step,
elapsed time).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch

from core.diskfull import is_disk_full
from worker.engine.errors import TrainingError
from worker.engine.state import EarlyStopState, LoopState

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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_failed(path, loop.step, exc, payload) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException as exc:
        os.unlink(tmp)
        # OSError from Python's writes; RuntimeError ("unexpected pos") from torch's zip
        # writer when the disk fills under it, the ENOSPC only in its context.
        if isinstance(exc, (OSError, RuntimeError)):
            raise write_failed(path, loop.step, exc, payload) from exc
        raise
    return Path(tmp)


def write_failed(
    path: Path, step: int, exc: BaseException, payload: dict[str, Any]
) -> CheckpointWriteFailed:
    """The error for a failed write: a full disk is named, with what did not fit where.

    The free space is read after the partial file is gone, so it is what the whole
    checkpoint had to fit in.
    """
    if not is_disk_full(exc):
        return CheckpointWriteFailed(path, step, exc)
    try:
        free: int | None = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    return CheckpointDiskFull(path, step, exc, needed=serialized_size(payload), free=free)


class _Counter(io.RawIOBase):
    """A sink that keeps only the number of bytes written to it."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.count += size
        return size


def serialized_size(payload: dict[str, Any]) -> int | None:
    """The bytes `torch.save(payload)` writes, counted without storing them (on a failed
    write only: it costs a second serialization); None if that fails too."""
    counter = _Counter()
    try:
        torch.save(payload, cast(IO[bytes], counter))  # it has what torch uses: write()
    except Exception:  # the message then says the size is unknown; the run fails anyway
        return None
    return counter.count


class CheckpointWriteFailed(TrainingError):
    """A checkpoint could not be written (a full disk, most often): the run stops with the
    files and metrics it has, and a retry resumes from its last checkpoint."""

    def __init__(self, path: Path, step: int, exc: BaseException) -> None:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        super().__init__(
            f"could not write the checkpoint of step {step} ({path.name}): {reason}; the "
            "metrics and earlier checkpoints are kept: free space on the checkpoint volume "
            "(or keep fewer: training.keep_checkpoints), then retry"
        )
        self.step = step


class CheckpointDiskFull(CheckpointWriteFailed):
    """The checkpoint volume has no room for the checkpoint: the worker fails the run as
    `disk_full`, naming the directory, the checkpoint's size and the free space."""

    def __init__(
        self, path: Path, step: int, exc: BaseException, *, needed: int | None, free: int | None
    ) -> None:
        TrainingError.__init__(
            self,
            f"no space left for the checkpoint of step {step} in {path.parent}: it needs "
            f"{'an unknown number of' if needed is None else needed} bytes, "
            f"{'an unknown number' if free is None else free} bytes are "
            "free; the metrics and earlier checkpoints are kept: free space on the "
            "checkpoint volume (or keep fewer: training.keep_checkpoints), then retry",
        )
        self.step, self.directory, self.needed, self.free = step, path.parent, needed, free


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
    # Read through the spec's own model: a field added since (with its default) is no change.
    written = type(run.spec).model_validate(payload["spec"]).model_dump(mode="json")
    if written != run.spec.model_dump(mode="json"):
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


def restore_fork(run: Any, payload: dict[str, Any], *, step: int) -> LoopState:
    """Start `run` (the fork's spec) from its parent's checkpoint at `step`.

    Everything the parent had is restored (weights, optimizer moments, data order, every RNG,
    the loop position with its running sums, best and early-stopping state) and then what the
    fork's spec changes is applied: the optimizer's hyperparameters, and the schedules, which
    are functions of the step and so continue on the same clock. A changed seed reseeds the
    noise (and dropout) generators from step `step` on; the data order stays the parent's.
    """
    parent = type(run.spec).model_validate(payload["spec"])
    loop = LoopState.from_state_dict(payload["loop"])
    if loop.step != step:
        raise TrainingError(f"the parent's checkpoint is at step {loop.step}, not {step}")
    try:
        run.model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise TrainingError(f"the fork's model cannot take the parent's weights: {exc}") from exc
    run.optimizer.load_state_dict(payload["optimizer"])
    o = run.spec.optimizer
    for group in run.optimizer.param_groups:
        group["lr"], group["weight_decay"] = o.lr, o.weight_decay
    if parent.noise_schedule == run.spec.noise_schedule:
        run.noise_schedule.load_state_dict(payload["noise_schedule"])
    if parent.optimizer.lr_schedule == o.lr_schedule:
        run.lr_schedule.load_state_dict(payload["lr_schedule"])
    restore_rng(payload["rng"], run.data_gen, run.noise_gen)
    if parent.seed != run.spec.seed:
        noise_seed = np.random.SeedSequence([run.spec.seed, step]).generate_state(1)[0]
        run.noise_gen.manual_seed(int(noise_seed))
        torch.manual_seed(int(noise_seed))
    if loop.perm is not None:
        loop.perm = loop.perm.to(run.device)
    loop.finished = False  # a fork at a finished run's last step may extend it
    loop.kept = {}  # the parent's kept files are the parent's
    if parent.training.early_stopping != run.spec.training.early_stopping:
        loop.early = EarlyStopState()
    if parent.training.best_metric != run.spec.training.best_metric or (
        parent.training.best_mode != run.spec.training.best_mode
    ):
        loop.best = {}
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
