"""How an ingest consumer gets its windows scored, in either mode, without ever blocking.

``ScoringClient.submit(windows)`` returns at once; results come back, in submission order,
through ``on_scores(start_columns, probs, version)``.

* Embedded mode (no ``REDIS_URL``): the process's shared ``Scorer``.
* Scaled mode: ``{"type": "score.windows", "reply_channel", "request_id", "windows" (float32
  bytes), "shape", "features"}`` goes to the channel ``detection-score`` (served by
  ``manage.py runworker detection-score``). By default (``batched``) the windows of every stream
  in the process travel together (``scoring_batcher.RemoteBatcher``: one request per batch, the
  answer on the batcher's own channel); with ``batched=False`` each stream sends its own request
  and the worker answers on the consumer's channel, which hands it to ``handle_result``. A
  request without an answer within ``reply_timeout_s`` is sent once more; if that one times out
  too, or the channel layer fails, the windows are scored inline with a local Scorer. Every
  retry, inline scoring and failure is counted in ``stats``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from .scoring import shared_scorer
from .scoring_batcher import batcher_for

log = logging.getLogger(__name__)

SCORE_CHANNEL = "detection-score"
REPLY_TIMEOUT_S = 1.0
CLOSE_GRACE_S = 30.0  # after the last window: time to deliver what is in flight

OnScores = Callable[[list[int], np.ndarray, str], Awaitable[None]]


@dataclass
class ClientStats:
    requests: int = 0
    windows: int = 0
    retries: int = 0  # requests sent again after a timeout
    inline: int = 0  # requests scored in this process because no worker answered
    failed: int = 0  # requests that could not be scored at all (logged)
    layer_errors: int = 0  # requests the channel layer could not send (then scored inline)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def encode_request(windows: np.ndarray, reply_channel: str, request_id: str, key: str) -> dict:
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    return {
        "type": "score.windows",
        "reply_channel": reply_channel,
        "request_id": request_id,
        "windows": windows.tobytes(),
        "shape": list(windows.shape),
        "features": key,
    }


def decode_windows(message: dict) -> np.ndarray:
    shape = tuple(int(n) for n in message["shape"])
    return np.frombuffer(message["windows"], dtype=np.float32).reshape(shape)


def result_message(request_id: str, probs: np.ndarray | None, version: str, error: str = ""):
    message = {"type": "score.result", "request_id": request_id, "version": version}
    if error:
        message["error"] = error
    else:
        message["probs"] = np.asarray(probs, dtype=np.float32).tobytes()
    return message


class ScoringClient:
    """One per stream. ``channel_layer``/``reply_channel`` None = embedded (in-process) mode."""

    def __init__(
        self,
        on_scores: OnScores,
        features_key: str,
        *,
        channel_layer=None,
        reply_channel: str | None = None,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        model_dir=None,
        batched: bool = True,
    ) -> None:
        self.on_scores = on_scores
        self.features_key = features_key
        self.channel_layer = channel_layer
        self.reply_channel = reply_channel
        self.reply_timeout_s = reply_timeout_s
        self.model_dir = model_dir
        self.batched = batched  # one request per process and batch (scoring_batcher)
        self.stats = ClientStats()
        self._waiting: dict[str, asyncio.Future] = {}
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self._order: asyncio.Queue | None = None
        self._deliverer: asyncio.Task | None = None

    @property
    def scaled(self) -> bool:
        return self.channel_layer is not None and self.reply_channel is not None

    def submit(self, start_columns: list[int], windows: np.ndarray) -> None:
        """Queue windows for scoring; never waits. An empty batch keeps its place in order."""
        if self._order is None:
            self._order = asyncio.Queue()
            self._deliverer = asyncio.get_running_loop().create_task(self._deliver())
        task = asyncio.get_running_loop().create_task(self._score(windows))
        self._order.put_nowait((start_columns, task))

    def submit_known(self, start_columns: list[int], probs: np.ndarray, version: str) -> None:
        """Deliver already-known probabilities (gated windows) in order with the others."""
        if self._order is None:
            self._order = asyncio.Queue()
            self._deliverer = asyncio.get_running_loop().create_task(self._deliver())
        future = asyncio.get_running_loop().create_future()
        future.set_result((probs, version))
        self._order.put_nowait((start_columns, future))

    def handle_result(self, message: dict) -> None:
        """The consumer's ``score_result`` handler: resolve the waiting request."""
        future = self._waiting.pop(message.get("request_id", ""), None)
        if future is None or future.done():
            return  # late answer to a request already retried or scored inline
        if message.get("error"):
            future.set_exception(RuntimeError(f"scoring worker: {message['error']}"))
        else:
            probs = np.frombuffer(message["probs"], dtype=np.float32)
            future.set_result((probs, message.get("version", "")))

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
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

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
                return await self._remote(windows)
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
            reason = f"no scoring worker answered {self.reply_channel} twice"
        self.stats.inline += 1
        if self.stats.inline in (1, 10, 100) or self.stats.inline % 1000 == 0:
            log.warning("%s; scoring inline (%d requests so far)", reason, self.stats.inline)
        return await self._inline(windows)

    async def _remote(self, windows: np.ndarray) -> tuple[np.ndarray, str]:
        if self.batched:
            batcher = batcher_for(self.channel_layer, self.features_key)
            return await batcher.score(windows, self.reply_timeout_s)
        request_id = f"{self._prefix}-{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            await self.channel_layer.send(
                SCORE_CHANNEL,
                encode_request(windows, self.reply_channel, request_id, self.features_key),
            )
            return await asyncio.wait_for(future, self.reply_timeout_s)
        finally:
            self._waiting.pop(request_id, None)

    async def _inline(self, windows: np.ndarray) -> tuple[np.ndarray, str]:
        scorer = shared_scorer(self.model_dir)
        return await scorer.score(windows, key=self.features_key)
