"""How an ingest consumer gets its windows scored, in either mode, without ever blocking.

``ScoringClient.submit(windows)`` returns at once; results come back, in submission order,
through ``on_scores(start_columns, probs, version)``.

* Embedded mode (no ``REDIS_URL``): the process's shared ``Scorer``.
* Scaled mode: the windows of every stream in the process travel together to
  ``manage.py runworker detection-score`` (``scoring_batcher.RemoteBatcher``: one request per
  batch, the answer on the batcher's own channel; messages in ``scoring_messages``). A
  request without an answer within ``reply_timeout_s`` is sent once more; if that one times out
  too, or the channel layer fails, the windows are scored inline with a local Scorer. Every
  retry, inline scoring and failure is counted in ``stats``.
* A request past its timeout while workers are still answering this process's other requests
  is late, not lost: the workers are alive and this process (or the queue) is behind, so it
  keeps waiting, up to ``late_limit_s``, and is counted as ``late``. Scoring inline there
  would load the very process that is late, and a busy server would collapse into scoring
  everything itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from .scoring import shared_scorer
from .scoring_batcher import batcher_for

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 1.0
LATE_LIMIT_S = 10.0  # longest wait for an answer while workers are answering other requests
CLOSE_GRACE_S = 30.0  # after the last window: time to deliver what is in flight

OnScores = Callable[[list[int], np.ndarray, str], Awaitable[None]]


@dataclass
class ClientStats:
    requests: int = 0
    windows: int = 0
    retries: int = 0  # requests sent again after a timeout
    late: int = 0  # timeouts waited out because workers were answering other requests
    inline: int = 0  # requests scored in this process because no worker answered
    failed: int = 0  # requests that could not be scored at all (logged)
    layer_errors: int = 0  # requests the channel layer could not send (then scored inline)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class ScoringClient:
    """One per stream. ``channel_layer`` None = embedded (in-process) mode."""

    def __init__(
        self,
        on_scores: OnScores,
        features_key: str,
        *,
        channel_layer=None,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        late_limit_s: float = LATE_LIMIT_S,
        model_dir=None,
    ) -> None:
        self.on_scores = on_scores
        self.features_key = features_key
        self.channel_layer = channel_layer
        self.reply_timeout_s = reply_timeout_s
        self.late_limit_s = late_limit_s
        self.model_dir = model_dir
        self.stats = ClientStats()
        self._order: asyncio.Queue | None = None
        self._deliverer: asyncio.Task | None = None

    @property
    def scaled(self) -> bool:
        return self.channel_layer is not None

    def submit(self, start_columns: list[int], windows: np.ndarray) -> None:
        """Queue windows for scoring; never waits. An empty batch keeps its place in order."""
        order = self._delivery_order()
        if self.scaled:
            pending = asyncio.get_running_loop().create_task(self._score(windows))
        else:  # straight into the process's batcher: no task per request
            self.stats.requests += 1
            self.stats.windows += len(windows)
            try:
                pending = shared_scorer(self.model_dir).submit(windows, key=self.features_key)
            except Exception as exc:  # delivered (and counted as failed) in order
                pending = asyncio.get_running_loop().create_future()
                pending.set_exception(exc)
        order.put_nowait((start_columns, pending))

    def submit_known(self, start_columns: list[int], probs: np.ndarray, version: str) -> None:
        """Deliver already-known probabilities (gated windows) in order with the others."""
        order = self._delivery_order()
        future = asyncio.get_running_loop().create_future()
        future.set_result((probs, version))
        order.put_nowait((start_columns, future))

    def _delivery_order(self) -> asyncio.Queue:
        """The queue results are delivered from, in submission order (started at first use)."""
        if self._order is None:
            self._order = asyncio.Queue()
            self._deliverer = asyncio.get_running_loop().create_task(self._deliver())
        return self._order

    async def close(self) -> None:
        """Deliver what is in flight (scores and the alerts they open), then stop.

        Waits up to ``2 * reply_timeout_s + CLOSE_GRACE_S``: enough for a retry, inline scoring
        and the database writes of an alert on a busy machine, bounded if something hangs.
        """
        if self._deliverer is None:
            return
        self._order.put_nowait(None)
        timeout = 2 * self.reply_timeout_s + CLOSE_GRACE_S
        try:
            await asyncio.wait_for(asyncio.shield(self._deliverer), timeout=timeout)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("scores still in flight after %g s at the end of a stream", timeout)
            self._deliverer.cancel()

    # ------------------------------------------------------------------ internals

    async def _deliver(self) -> None:
        while True:
            item = await self._order.get()
            if item is None:
                return
            start_columns, pending = item
            try:
                probs, version = await pending
            except Exception as exc:
                self.stats.failed += 1
                log.error("windows %s could not be scored: %s", start_columns[:1], exc)
                continue
            try:
                await self.on_scores(start_columns, probs, version)
            except Exception:
                log.exception("handling scores failed")

    async def _score(self, windows: np.ndarray) -> tuple[np.ndarray, str]:
        self.stats.requests += 1
        self.stats.windows += len(windows)
        if not self.scaled:
            return await self._inline(windows)
        for attempt in range(2):
            if attempt:
                self.stats.retries += 1
            try:
                return await self._remote(windows, retry=attempt > 0)
            except TimeoutError:
                continue
            except RuntimeError as exc:  # the worker answered with an error
                reason = str(exc)
                break
            except Exception as exc:  # the channel layer failed (Redis down, pool exhausted)
                reason = f"channel layer: {type(exc).__name__}: {exc}"
                self.stats.layer_errors += 1
                break
        else:
            reason = "no scoring worker answered twice"
        self.stats.inline += 1
        if self.stats.inline in (1, 10, 100) or self.stats.inline % 1000 == 0:
            log.warning("%s; scoring inline (%d requests so far)", reason, self.stats.inline)
        return await self._inline(windows)

    async def _remote(self, windows: np.ndarray, retry: bool = False) -> tuple[np.ndarray, str]:
        """The worker's answer; ``TimeoutError`` if none came in time (see the module doc)."""
        batcher = batcher_for(self.channel_layer, self.features_key)
        future = await batcher.submit(windows, retry=retry)
        waited = 0.0
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(future), self.reply_timeout_s)
                except TimeoutError:
                    waited += self.reply_timeout_s
                    if waited >= self.late_limit_s or not batcher.answered_within(
                        self.reply_timeout_s
                    ):
                        raise
                    self.stats.late += 1
                    if self.stats.late in (1, 10, 100) or self.stats.late % 1000 == 0:
                        log.warning(
                            "scoring answer late but workers are answering; waiting "
                            "(%d late so far)",
                            self.stats.late,
                        )
        finally:
            future.cancel()  # no-op once answered; otherwise the batcher forgets it

    async def _inline(self, windows: np.ndarray) -> tuple[np.ndarray, str]:
        scorer = shared_scorer(self.model_dir)
        return await scorer.score(windows, key=self.features_key)
