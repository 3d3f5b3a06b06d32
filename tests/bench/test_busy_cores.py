"""The benchmark's other work: busy processes at the priority asked for, gone after the block."""

import os
import time

from bench._busy_cores import busy_work, shares
from tests.devices.live import SCHED_IDLE, thread_nices, thread_policies, thread_stats


def cpu_ticks(pid: int) -> int:
    return sum(thread_stats(pid, 14)) + sum(thread_stats(pid, 15))  # utime + stime


def test_shares_split_cores_into_whole_processes_and_a_rest():
    assert shares(0) == []
    assert shares(0.5) == [0.5]
    assert shares(2) == [1.0, 1.0]
    assert shares(2.25) == [1.0, 1.0, 0.25]


def test_busy_processes_spin_at_their_priority_and_stop_after_the_block():
    start = os.getpriority(os.PRIO_PROCESS, 0)
    with busy_work(1.5, "idle") as idle, busy_work(0.5, min(19, start + 5)) as niced:
        assert len(idle) == 2 and len(niced) == 1
        time.sleep(1.0)
        assert all(set(thread_policies(pid)) == {SCHED_IDLE} for pid in idle)
        assert set(thread_nices(niced[0])) == {min(19, start + 5)}
        assert all(cpu_ticks(pid) > 0 for pid in idle + niced)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in idle + niced)
