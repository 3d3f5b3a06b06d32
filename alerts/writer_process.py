"""Live alerts written in a process of their own (``EYESCREAM_ALERT_WRITER = "process"``).

In a threaded writer an alert's write (the ORM, the snippet's FLAC encoding, the picture task's
dispatch: about 7 ms of CPU to open an alert, 6 ms for its final update) holds the GIL of the
daphne process whose one event loop serves every stream; during a burst of incidents that is a
quarter of a core taken from the loop, when its frames need it most (docs/performance.md).

``AlertWriter`` hands each write to one child process of its own (one for openings, one for
updates, as the threads were): the child runs ``alerts.services`` unchanged on its own database
connection and commits, and the broadcasts the service makes after commit are collected there
and returned with the result, so daphne hands them to its dashboards the way it always did
(``broadcasting.send_to_group``). An alert is still committed with its snippet before anyone is
told of it.

The child is started with ``spawn`` (never a fork of a process with an event loop, threads and
open sockets), takes the parent's settings as they are at its start (a test's database and
media folder included) and imports everything an alert needs before its first write.

If the child dies, the write that was in it raises ``WriterLost`` and the next write starts a
new child; after ``MAX_DEATHS_IN_A_ROW`` deaths without a write between (a child that cannot
start, say) every write raises ``WriterLost`` at once. The caller writes a lost one itself, in
a thread (``services.open_alert_once`` does not create a second alert for an incident whose row
the dead child had committed; updates write the same values again).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)


MAX_DEATHS_IN_A_ROW = 3  # then the writer gives up on processes: every write raises WriterLost


class WriterLost(RuntimeError):
    """The writer process died with this write in it (the write may or may not have landed)."""


def settings_snapshot() -> dict[str, Any]:
    """Every upper-case setting that pickles, as this process has it now."""
    from django.conf import settings

    snapshot = {}
    for name in dir(settings):
        if not name.isupper():
            continue
        value = getattr(settings, name)
        try:
            pickle.dumps(value)
        except Exception:
            continue
        snapshot[name] = value
    return snapshot


def _broadcast_when_written(written: asyncio.Future) -> None:
    """Send a finished write's broadcasts, in order (on the event loop that awaited it)."""
    from .broadcasting import send_to_group

    if written.cancelled() or written.exception() is not None:
        return
    _, messages = written.result()
    for group, message in messages:
        try:
            send_to_group(group, message)
        except Exception:
            log.exception("could not broadcast %s", message.get("type"))


class AlertWriter:
    """One child process that runs alert writes in the order they are handed to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.restarts = 0  # children that died and were replaced
        self.deaths_in_a_row = 0  # without a write that succeeded in between
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                from django.conf import settings

                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_child,
                    initargs=(
                        # settings.SETTINGS_MODULE is None under override_settings (tests)
                        os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE,
                        settings_snapshot(),
                        self.name,
                    ),
                )
            return self._pool

    def start(self) -> None:
        """Start the child now (its imports take a few seconds), not at the first alert."""
        self._executor().submit(_ready)

    async def run(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` in the child (one of this module's writes, which return
        ``(result, broadcasts)``); the broadcasts are sent from here, in order, once it has
        returned (that is, after its commit)."""
        if self.deaths_in_a_row >= MAX_DEATHS_IN_A_ROW:
            raise WriterLost(
                f"alert writer {self.name!r} gave up after {MAX_DEATHS_IN_A_ROW} deaths"
            )
        pool = self._executor()
        loop = asyncio.get_running_loop()
        call = functools.partial(function, *args, **kwargs)
        try:
            written = loop.run_in_executor(pool, call)
            # The broadcasts go out when the child has committed, even when the stream that
            # asked is cancelled meanwhile (daphne cancels a closed connection's consumer after
            # its close timeout, which a child still starting on a busy host can outlast): a
            # stored alert is always shown.
            written.add_done_callback(_broadcast_when_written)
            result, _ = await asyncio.shield(written)
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise WriterLost(f"alert writer {self.name!r} died during a write") from exc
        self.deaths_in_a_row = 0
        return result

    def _replace(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self.restarts += 1
                self.deaths_in_a_row += 1
                if self.deaths_in_a_row >= MAX_DEATHS_IN_A_ROW:  # e.g. it cannot even start
                    log.error(
                        "alert writer %r died %d times in a row; its writes are done in "
                        "threads of this process from now on (see the errors above)",
                        self.name,
                        self.deaths_in_a_row,
                    )
                else:
                    log.warning(
                        "alert writer %r died (%d so far); a new one starts at the next write",
                        self.name,
                        self.restarts,
                    )
        pool.shutdown(wait=False, cancel_futures=True)

    def pid(self) -> int | None:
        """The child's process id, once it runs (for tests and diagnostics)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return next(iter(processes), None)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


# --------------------------------------------------------------------------- in the child


def _start_child(settings_module: str, snapshot: dict[str, Any], name: str) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    from django.conf import settings

    for key, value in snapshot.items():
        setattr(settings, key, value)
    import django

    django.setup()
    from . import broadcasting, services, tasks  # noqa: F401 (imported before the first alert)

    log.info("alert writer %r ready (pid %d)", name, os.getpid())


def _exit_with_parent(parent: int, every_s: float = 0.5) -> None:
    """A daphne that is killed (SIGKILL, the OOM killer) cannot stop its writers, and the
    executor's queue never tells them: the child leaves when it is no longer its parent's."""
    while os.getppid() == parent:
        time.sleep(every_s)
    log.warning("alert writer: daphne (pid %d) is gone; stopping", parent)
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def _write(function, *args, **kwargs) -> tuple[Any, list]:
    """``function(*args, **kwargs)`` with its broadcasts collected instead of sent; a connection
    that broke or grew old is replaced first and after, as ``database_sync_to_async`` does."""
    from django.db import close_old_connections

    from .broadcasting import collected_broadcasts

    close_old_connections()
    try:
        with collected_broadcasts() as messages:
            result = function(*args, **kwargs)
    finally:
        close_old_connections()
    return result, messages


def open_alert(**kwargs) -> tuple[int, list]:
    """``services.open_alert(**kwargs)``: the alert's id and the broadcasts to send."""
    from . import services

    alert, messages = _write(services.open_alert, **kwargs)
    return alert.pk, messages


def update_alert(alert_id: int, **kwargs) -> tuple[None, list]:
    from . import services

    _, messages = _write(services.update_alert, alert_id, **kwargs)
    return None, messages


def update_running_alerts(scores: dict) -> tuple[list[int], list]:
    from . import services

    return _write(services.update_running_alerts, scores)
