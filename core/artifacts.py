"""Where an experiment's files live under the shared checkpoint directory.

The worker writes them and the API serves them; both ask here. Stored paths are relative to
the checkpoint directory, so worker hosts may mount the shared directory at different paths.
The engine imports only the names of kept checkpoints from here, so this module imports
nothing but the standard library.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine imports this module on a GPU image without the server's packages
    from core.settings import Settings
    from core.store.lifecycle import Claim


def checkpoint_path(settings: Settings, claim: Claim) -> Path:
    """Where this attempt writes its checkpoints: named by its fencing token, so a stale
    duplicate of an earlier attempt never overwrites the file a later one resumes from."""
    return settings.resolved_checkpoint_dir / claim.experiment_id / f"ckpt-{claim.token}.pt"


def resolve_checkpoint(settings: Settings, stored: str | None) -> Path | None:
    """The file behind a stored checkpoint path (relative to the checkpoint directory)."""
    return None if not stored else settings.resolved_checkpoint_dir / stored


def weights_path(settings: Settings, experiment_id: str) -> Path:
    """Where the final weights are exported (the API serves this file)."""
    return settings.resolved_checkpoint_dir / experiment_id / "final.safetensors"


def kept_dir(settings: Settings, experiment_id: str) -> Path:
    """Where an experiment keeps the checkpoints it may be forked at (docs/forks.md)."""
    return settings.resolved_checkpoint_dir / experiment_id / "kept"


def kept_name(step: int) -> str:
    """The file name of the checkpoint kept at `step`."""
    return f"step-{step}.pt"


def kept_steps(directory: Path) -> list[int]:
    """The steps of the kept checkpoints in `directory`, ascending."""
    steps = []
    if directory.is_dir():
        for path in directory.glob("step-*.pt"):
            number = path.stem.removeprefix("step-")
            if number.isdigit():
                steps.append(int(number))
    return sorted(steps)
