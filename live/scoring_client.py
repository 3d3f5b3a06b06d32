"""How an ingest consumer gets its windows scored, in either mode, without ever blocking.

``ScoringClient.submit(windows)`` returns at once; results come back, in submission order,
through ``on_scores(start_columns, probs, version)``.

* Embedded mode (no ``REDIS_URL``): the process's shared ``Scorer``.
* Scaled mode: the windows of every stream in the process travel together to
  ``manage.py runworker detection-score`` (``scoring_batcher.RemoteBatcher``: one request per
  batch, the answer on the batcher's own channel; messages in ``scoring_messages``). The
  batcher decides about missing answers for all streams at once: late (waited for, while
  workers answer other requests or this process is behind), retried once, or given up
  (``ScoringTimeout``). Windows it gives up on, and windows the channel layer could not send,
  are scored inline with a local Scorer. Every retry, late answer, inline scoring and failure
  is counted in ``stats``.

Neither mode starts a task or a timer per request: one delivery task per stream awaits the
requests' futures in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
from django.conf import settings

from detection.scoring import shared_scorer

from . import metrics
from .scoring_batcher import (
    LATE_LIMIT_S,
    REPLY_TIMEOUT_S,
    ClientStats,
    ScoringTimeout,
    batcher_for,
    worth_logging,
)
from .scoring_messages import uniform_step

log = logging.getLogger(__name__)

__all__ = ["CLOSE_GRACE_S", "ClientStats", "ScoringClient"]

CLOSE_GRACE_S = 30.0  # after the last window: time to deliver what is in flight

OnScores = Callable[[list[int], np.ndarray, str], Awaitable[None]]


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
        model_number: int | None = None,
    ) -> None:
        self.on_scores = on_scores
        self.features_key = features_key
        self.channel_layer = channel_layer
        self.reply_timeout_s = reply_timeout_s
        self.late_limit_s = late_limit_s
        # The stream's model version (``model_choice``; switched between two submissions by
        # ``StreamScoring``); EYESCREAM_MODEL_DIR unless named.
        self.model_dir = settings.EYESCREAM_MODEL_DIR if model_dir is None else model_dir
        self.model_number = model_number
        # The version number of the scores being delivered (read by ``on_scores``).
        self.scored_by: int | None = model_number
        metrics.observe_scorer(shared_scorer(self.model_dir))  # forwards here: embedded, inline
        self.stats = ClientStats()
        self._order: asyncio.Queue | None = None
        self._deliverer: asyncio.Task | None = None
        self._remote = None  # the RemoteBatcher (scaled mode)

    @property
    def scaled(self) -> bool:
        return self.channel_layer is not None

    def submit(self, start_columns: list[int], windows: np.ndarray) -> None:
        """Queue windows for scoring; never waits. An empty batch keeps its place in order.

        Windows whose ``start_columns`` are evenly spaced and whose columns overlap accordingly
        (``WindowCutter``'s cuts; checked when the request is encoded) travel in scaled mode as
        their columns, once.
        """
        order = self._delivery_order()
        self.stats.requests += 1
        self.stats.windows += len(windows)
        try:
            if self.scaled:
                step = uniform_step(start_columns, windows.shape[-1])
                pending = self._batcher().submit(windows, self.stats, step)
            else:  # straight into the process's batcher
                scorer = shared_scorer(self.model_dir)
                if scorer.on_forward is None:
                    metrics.observe_scorer(scorer)
                pending = scorer.submit(windows, key=self.features_key)
        except Exception as exc:  # delivered (and counted) in order
            pending = asyncio.get_running_loop().create_future()
            pending.set_exception(exc)
        model = (self.model_dir, self.model_number)
        order.put_nowait((start_columns, pending, windows, time.monotonic(), model))

    def _batcher(self):
        """The process's batcher, looked up once per stream (and again on a new event loop)."""
        batcher = self._remote
        model = str(self.model_dir)
        if (
            batcher is None
            or batcher.loop is not asyncio.get_running_loop()
            or batcher.model != model
        ):
            batcher = self._remote = batcher_for(
                self.channel_layer,
                self.features_key,
                model=model,
                reply_timeout_s=self.reply_timeout_s,
                late_limit_s=self.late_limit_s,
            )
        return batcher

    def submit_known(self, start_columns: list[int], probs: np.ndarray, version: str) -> None:
        """Deliver already-known probabilities (gated windows) in order with the others."""
        order = self._delivery_order()
        future = asyncio.get_running_loop().create_future()
        future.set_result((probs, version))
        order.put_nowait((start_columns, future, None, None, (self.model_dir, self.model_number)))

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
            start_columns, pending, windows, submitted, (model_dir, number) = item
            try:
                probs, version = await self._result(pending, windows, model_dir)
                if submitted is not None:
                    metrics.SCORING_SECONDS.observe(time.monotonic() - submitted)
                    metrics.WINDOWS_BY_VERSION.labels(str(number or "")).inc(len(start_columns))
            except Exception as exc:
                self.stats.failed += 1
                metrics.SCORING_FAILED.inc()
                log.error("windows %s could not be scored: %s", start_columns[:1], exc)
                continue
            self.scored_by = number
            try:
                await self.on_scores(start_columns, probs, version)
            except Exception:
                log.exception("handling scores failed")

    async def _result(
        self, pending, windows: np.ndarray | None, model_dir
    ) -> tuple[np.ndarray, str]:
        try:
            return await pending
        except Exception as exc:
            if not self.scaled or windows is None:
                raise
            if isinstance(exc, ScoringTimeout | RuntimeError):  # no answer, or an error answer
                reason = str(exc)
            else:  # the channel layer failed (Redis down, pool exhausted)
                reason = f"channel layer: {type(exc).__name__}: {exc}"
                self.stats.layer_errors += 1
        self.stats.inline += 1
        metrics.SCORED_INLINE.inc()
        if worth_logging(self.stats.inline):
            log.warning("%s; scoring inline (%d requests so far)", reason, self.stats.inline)
        return await shared_scorer(model_dir).score(windows, key=self.features_key)
