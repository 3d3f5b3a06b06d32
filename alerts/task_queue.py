"""Queueing a task so that it never fails or stalls the caller (the live path, a request)."""

from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)


def dispatch(task, *args) -> None:
    """Queue a task without ever failing or stalling the caller.

    Scaled mode: sent to the broker. Embedded mode (eager Celery): run on the one background
    task thread by default, so a picture or webhook never holds up the live path's database
    thread, and tasks run one after another: a burst of alerts queues its pictures instead of
    starting a thread each, which would starve daphne's event loop of the GIL.
    ``EYESCREAM_EAGER_TASKS_INLINE = True`` runs it right here (tests).
    """
    try:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            task.apply_async(args=args, retry=False)
        elif getattr(settings, "EYESCREAM_EAGER_TASKS_INLINE", False):
            run_eager(task, args)
        else:
            _eager_pool().submit(run_eager, task, args)
    except Exception:
        log.exception("could not dispatch %s%r", task.name, args)


def _eager_pool() -> ThreadPoolExecutor:
    """The process's one background thread for eager tasks (embedded mode only)."""
    return background_pool("eager-task", 1)


@functools.cache
def background_pool(name: str, threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``threads`` threads named ``name`` for eager tasks, made at first
    use (embedded mode only; ``notifications.queue`` keeps its deliveries on one of its own)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)


def run_eager(task, args) -> None:
    """Run an eager task here, logging its failure; a pool thread's connections are closed."""
    try:
        task.apply(args=args, throw=True)
    except Exception:
        log.exception("task %s%r failed", task.name, args)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()
