"""Other work on the host, for the live benchmark: processes that keep CPU busy.

``busy_work(cores, priority)`` starts ``ceil(cores)`` processes; together they ask for
``cores`` cores (each spins for its share of every 100 ms and sleeps the rest) at ``priority``
(a nice value, or ``"idle"`` for ``SCHED_IDLE``), as training or a test suite would beside the
live path. ``idle`` is what ``manage.py train`` takes by default (``EYESCREAM_BATCH_PRIORITY``).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator

from eyescream_site.cpu_priority import IDLE

PERIOD_S = 0.1


def shares(cores: float) -> list[float]:
    """Each process's share of a core: ``[1, 1, 0.5]`` for 2.5 cores."""
    if cores <= 0:
        return []
    whole = math.floor(cores)
    rest = round(cores - whole, 6)
    return [1.0] * whole + ([rest] if rest else [])


def spin(share: float, period_s: float = PERIOD_S) -> None:
    """Busy for ``share`` of every period, forever."""
    while True:
        start = time.perf_counter()
        while time.perf_counter() - start < share * period_s:
            pass
        if share < 1:
            time.sleep((1 - share) * period_s)


@contextlib.contextmanager
def busy_work(cores: float, priority: int | str) -> Iterator[list[int]]:
    """The busy processes' pids while the block runs; they are killed after it."""

    def take_priority() -> None:  # in the child, before the first spin
        if priority == IDLE:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.setpriority(os.PRIO_PROCESS, 0, priority)

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench._busy_cores", str(share)],
            preexec_fn=take_priority,
        )
        for share in shares(cores)
    ]
    try:
        yield [p.pid for p in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()


if __name__ == "__main__":
    spin(float(sys.argv[1]))
