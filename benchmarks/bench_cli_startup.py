"""How fast the `actlab` command starts, against the time of `python -c "import torch"`.

    python benchmarks/bench_cli_startup.py [--repeats 7]

Times (median of --repeats fresh processes, each after one warm-up) `python -c pass` (the
interpreter alone), `actlab --help`, `actlab ls` against a closed port (it fails fast:
what is timed is start-up and the import of the client), `import actlab`, and the
baseline `python -c "import torch"`; prints each as a ratio of the torch import. The
researcher's verbs import no torch, SQLAlchemy or Celery, so they should stay well under it.
Exit status 1 if `actlab --help` or `actlab ls` takes more than half the torch import.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

PY = sys.executable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket goes


def _time(argv: list[str], repeats: int) -> float:
    """Median wall time of `argv` in fresh processes, after one warm-up run."""
    subprocess.run(argv, capture_output=True, check=False)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{_closed_port()}"
    cases = {
        "python -c pass": [PY, "-c", "pass"],
        "actlab --help": [PY, "-m", "actlab", "--help"],
        "actlab ls (closed port)": [PY, "-m", "actlab", "ls", "--url", url],
        "python -c 'import actlab'": [PY, "-c", "import actlab"],
        "python -c 'import torch'": [PY, "-c", "import torch"],
    }
    # Interleaved per round would be fairer on a busy machine; medians of fresh processes
    # measured in the same run are what the ratios compare.
    results = {name: _time(argv, args.repeats) for name, argv in cases.items()}
    torch_s = results["python -c 'import torch'"]
    print(f"{'command':<28} {'median s':>9} {'x import torch':>15}")
    for name, seconds in results.items():
        print(f"{name:<28} {seconds:>9.3f} {seconds / torch_s:>15.2f}")
    slow = [n for n in ("actlab --help", "actlab ls (closed port)") if results[n] > torch_s / 2]
    if slow:
        print(f"slower than half of `import torch`: {', '.join(slow)}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
