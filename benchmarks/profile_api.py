"""Run `python -m actlab ...` under cProfile; write the stats when it stops.

    python benchmarks/profile_api.py OUT.prof api --port 8000

uvicorn re-raises the signal that stopped it after its shutdown, with the handlers it
found restored: the SIGTERM handler here then writes the stats (cProfile's own `-o` is
never reached, the default action killing the process first).
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
import time
from typing import Any

# ACTLAB_PROFILE_CPU=1 times with the process's CPU clock: on a busy machine wall time
# charges the moments the process waited for a core to whatever function it was in.
_clock = time.process_time if os.environ.get("ACTLAB_PROFILE_CPU") == "1" else time.perf_counter
profile = cProfile.Profile(_clock)
out = sys.argv[1]


def dump(*_: Any) -> None:
    profile.disable()
    profile.dump_stats(out)
    sys.exit(0)


if __name__ == "__main__":
    sys.argv = ["actlab", *sys.argv[2:]]
    signal.signal(signal.SIGTERM, dump)
    profile.enable()
    try:
        runpy.run_module("actlab", run_name="__main__")
    finally:
        dump()
