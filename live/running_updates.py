"""Running incidents' score updates, written for every stream of a process together.

While an incident lasts, its stream reports the scores so far about once a second. Written one
transaction each (and a thread hop, and a broadcast), two hundred running incidents cost the
ingest process more than all its audio during a burst of screams, and every stream's alerts
came late (docs/performance.md, "What the live path does and why"). ``RunningUpdates`` keeps
the newest scores of each alert and hands all of them to ``write`` (one call, in a thread: one
UPDATE for all rows) at most every ``interval_s``.

The final update of an incident (its end and full snippet) is not batched: the caller first
``settle``s the alert, which drops its waiting scores and waits for a write in progress that
holds them, so an older batch never lands after the final one. Batches are written one after
another, in order. A write that fails is logged and counted; the incident's final update still
writes its complete scores.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

INTERVAL_S = 0.5

Write = Callable[[dict[int, Any]], Awaitable[object]]


class RunningUpdates:
    def __init__(self, write: Write, interval_s: float = INTERVAL_S) -> None:
        self.write = write
        self.interval_s = interval_s
        self.loop = asyncio.get_running_loop()
        self.batches = 0
        self.written = 0  # alerts written, over all batches
        self.failed = 0  # batches whose write raised
        self._pending: dict[int, Any] = {}
        self._writing: set[int] = set()
        self._written = asyncio.Event()  # set whenever no batch is being written
        self._written.set()
        self._wakeup = asyncio.Event()
        self._task = self.loop.create_task(self._run(), name="running-alert-updates")

    def put(self, alert_id: int, scores: Any) -> None:
        """The newest scores of a running incident's alert (replaces any waiting ones)."""
        self._pending[alert_id] = scores
        self._wakeup.set()

    async def settle(self, alert_id: int) -> None:
        """Before an alert's final update: its waiting scores are dropped and a batch being
        written that holds them has finished."""
        self._pending.pop(alert_id, None)
        while alert_id in self._writing:
            await self._written.wait()

    async def close(self) -> None:
        """Write what waits, then stop."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._write_pending()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(self.interval_s)  # gather the other streams' updates
            self._wakeup.clear()
            await self._write_pending()

    async def _write_pending(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        self._writing = set(batch)
        self._written.clear()
        try:
            await self.write(batch)
            self.written += len(batch)
        except Exception:
            self.failed += 1
            log.exception("could not write the scores of %d running alerts", len(batch))
        finally:
            self.batches += 1
            self._writing = set()
            self._written.set()
