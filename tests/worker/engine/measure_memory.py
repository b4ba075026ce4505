"""Run in a fresh process: build a run from a spec JSON (argv[1]), take one training step
and one evaluation batch, print the peak RSS growth and the estimate as JSON."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import torch

from core.spec import ExperimentSpec
from core.spec.estimate import estimate
from worker.engine.setup import build_run


def _peak() -> int:
    """This process's peak RSS in bytes.

    VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across fork and execve, so a
    child of a large parent (pytest after the rest of the suite) starts at the parent's peak
    and would measure no growth at all.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _step(spec: ExperimentSpec, data_dir: Path) -> None:
    run = build_run(spec, data_dir)
    x, y = run.data.tensors["train"]
    batch = slice(0, spec.training.batch_size)
    out = run.forward(x[batch])
    if run.data.info.task == "classification":
        loss = torch.nn.functional.cross_entropy(out, y[batch])
    else:
        loss = torch.nn.functional.mse_loss(out.squeeze(-1), y[batch].view(-1))
    loss.backward()
    run.optimizer.step()
    with torch.no_grad():
        run.model.eval()
        run.forward(run.data.tensors["test"][0][: spec.training.eval_batch_size])


def main() -> None:
    body = json.loads(sys.argv[1])
    spec = ExperimentSpec.model_validate(body)
    data_dir = Path(sys.argv[2])
    torch.set_num_threads(1)
    # The same run at its smallest first: imports, kernels and allocator arenas are the
    # worker's cost, not this spec's; what grows after is.
    small = {**body, "dataset": {**body["dataset"]}}
    if "num_samples" in small["dataset"]:
        small["dataset"]["num_samples"] = 100
    else:  # a data set of fixed size: warm up on the small image set instead
        small["dataset"] = {"name": "digits", "as_image": not body["dataset"].get("flatten")}
    small["training"] = {**body.get("training", {}), "batch_size": 10, "eval_batch_size": 10}
    _step(ExperimentSpec.model_validate(small), data_dir)
    before = _peak()
    _step(spec, data_dir)
    print(json.dumps({"measured": _peak() - before, "parts": estimate(spec)}))


if __name__ == "__main__":
    main()
