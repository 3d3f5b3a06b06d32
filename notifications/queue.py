"""Queueing deliveries without ever failing or stalling the caller, now or after a delay.

Scaled mode: sent to the broker (``countdown`` for a retry). Embedded mode (eager Celery), as
``alerts.task_queue``: run in the background, here on a small pool of its own
(``EYESCREAM_DELIVERY_THREADS``), so that a hanging destination holds one thread until its
timeout and neither the live path, nor the alert pictures, nor other destinations wait for it;
a retry is started by a timer. ``EYESCREAM_EAGER_TASKS_INLINE = True`` runs it right here (tests;
a retry then sleeps its back-off first).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def dispatch(task, *args, countdown: float = 0.0) -> None:
    try:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            task.apply_async(args=args, countdown=countdown or None, retry=False)
        elif getattr(settings, "EYESCREAM_EAGER_TASKS_INLINE", False):
            time.sleep(countdown)
            _run_eager(task, args)
        elif countdown > 0:
            timer = threading.Timer(countdown, dispatch, args=(task, *args))
            timer.daemon = True
            timer.start()
        else:
            _delivery_pool().submit(_run_eager, task, args)
    except Exception:
        log.exception("could not dispatch %s%r", task.name, args)


def _delivery_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            threads = max(1, int(getattr(settings, "EYESCREAM_DELIVERY_THREADS", 4)))
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="delivery")
        return _pool


def _run_eager(task, args) -> None:
    try:
        task.apply(args=args, throw=True)
    except Exception:
        log.exception("task %s%r failed", task.name, args)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()
