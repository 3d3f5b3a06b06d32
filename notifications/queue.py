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

from alerts.task_queue import background_pool, run_eager

log = logging.getLogger(__name__)


def dispatch(task, *args, countdown: float = 0.0) -> None:
    try:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            task.apply_async(args=args, countdown=countdown or None, retry=False)
        elif getattr(settings, "EYESCREAM_EAGER_TASKS_INLINE", False):
            time.sleep(countdown)
            run_eager(task, args)
        elif countdown > 0:
            timer = threading.Timer(countdown, dispatch, args=(task, *args))
            timer.daemon = True
            timer.start()
        else:
            _delivery_pool().submit(run_eager, task, args)
    except Exception:
        log.exception("could not dispatch %s%r", task.name, args)


def _delivery_pool() -> ThreadPoolExecutor:
    threads = max(1, int(getattr(settings, "EYESCREAM_DELIVERY_THREADS", 4)))
    return background_pool("delivery", threads)
