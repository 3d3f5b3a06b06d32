"""CPU priority of the product's processes: the live path first, batch work after it.

On the 2-core development host, two busy cores of other work at the default priority took 200
scaled streams from a p95 latency of about 0.15 s to 3-3.6 s. The same work under Linux's
``SCHED_IDLE`` policy left them at 0.15 s; at nice 10, or with daphne and the scoring worker at
nice -10, at 0.2-0.3 s (``docs/performance.md``, "CPU priority"). So:

- daphne and ``runworker`` (everything that loads ``eyescream_site.asgi``) take the nice value
  ``EYESCREAM_LIVE_NICE`` when it is set. Raising a priority needs root or ``CAP_SYS_NICE``;
  without them the process logs a warning and runs on at the priority it has.
- ``manage.py train``, ``evaluate`` and ``detect`` take ``EYESCREAM_BATCH_PRIORITY``, and a
  Celery worker (alert pictures, webhooks) ``EYESCREAM_TASK_PRIORITY``: ``idle`` (the default
  of both: ``SCHED_IDLE``, CPU time only when nothing else wants it), a nice value, or empty
  (as started). They never take a higher priority than they were started with.

On Linux a priority belongs to each thread, and a new thread starts with its creator's, so
every thread that exists is set (``/proc/self/task``); later threads and child processes
inherit it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

IDLE = "idle"
NICE_RANGE = range(-20, 20)


def parse_nice(name: str, raw: str | None, idle_allowed: bool = False) -> int | str | None:
    """The nice value (or ``"idle"`` where allowed) a setting asks for; ``None`` when unset."""
    if raw is None or not raw.strip():
        return None
    if idle_allowed and raw.strip().lower() == IDLE:
        return IDLE
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value not in NICE_RANGE:
        choices = '"idle" or a nice value' if idle_allowed else "a nice value"
        raise ValueError(f"{name} must be {choices} from -20 to 19, got {raw!r}")
    return value


def batch_nice(current: int, wanted: int) -> int:
    """Batch work takes ``wanted`` but never a higher priority than it was started with."""
    return max(current, wanted)


def current_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def is_idle() -> bool:
    return hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(0) == os.SCHED_IDLE


def _thread_ids() -> list[int]:
    tasks = Path("/proc/self/task")
    return [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]


def _each_thread(apply: Callable[[int], None]) -> None:
    for thread_id in _thread_ids():
        try:
            apply(thread_id)
        except ProcessLookupError:  # the thread ended meanwhile
            pass


def set_nice(target: int, role: str) -> int:
    """Give every thread of this process nice ``target``; return the value it runs at."""
    current = current_nice()
    if current == target:
        return current
    try:
        _each_thread(lambda tid: os.setpriority(os.PRIO_PROCESS, tid, target))
    except PermissionError:
        _each_thread(lambda tid: os.setpriority(os.PRIO_PROCESS, tid, current))  # none half-way
        log.warning(
            "%s process %d: not allowed to take nice %d (raising a priority needs root or "
            "CAP_SYS_NICE); it runs at nice %d",
            role,
            os.getpid(),
            target,
            current,
        )
        return current
    log.info("%s process %d: nice %d (was %d)", role, os.getpid(), target, current)
    return target


def set_idle(role: str) -> None:
    """Every thread of this process under ``SCHED_IDLE`` (allowed without privileges: it only
    lowers); where there is no such policy, nice 19."""
    if is_idle():
        return
    if not hasattr(os, "SCHED_IDLE"):  # not Linux: the lowest nice value instead
        set_nice(NICE_RANGE[-1], role)
        return
    try:
        _each_thread(lambda tid: os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0)))
    except OSError as exc:
        log.warning("%s process %d: could not take SCHED_IDLE (%s)", role, os.getpid(), exc)
        return
    log.info(
        "%s process %d: SCHED_IDLE (CPU time only when nothing else wants it)", role, os.getpid()
    )


def apply_live_priority() -> None:
    """daphne / ``runworker``: ``EYESCREAM_LIVE_NICE`` if it is set."""
    from django.conf import settings

    if settings.EYESCREAM_LIVE_NICE is not None:
        set_nice(settings.EYESCREAM_LIVE_NICE, "live")


def lower_priority(wanted: int | str | None, role: str) -> None:
    """``"idle"``, a nice value (never above the one started with), or ``None``: as started."""
    if wanted == IDLE:
        set_idle(role)
    elif wanted is not None and not is_idle():  # SCHED_IDLE is below every nice value
        set_nice(batch_nice(current_nice(), wanted), role)


def apply_batch_priority() -> None:
    """Training, evaluation, offline detection: ``EYESCREAM_BATCH_PRIORITY``."""
    from django.conf import settings

    lower_priority(settings.EYESCREAM_BATCH_PRIORITY, "batch")


def apply_task_priority() -> None:
    """A Celery worker, before it starts its pool: ``EYESCREAM_TASK_PRIORITY``."""
    from django.conf import settings

    lower_priority(settings.EYESCREAM_TASK_PRIORITY, "task")
