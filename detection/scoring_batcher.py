"""One scoring request per ingest process and batch, not one per stream and frame.

Every stream's ``ScoringClient`` in a daphne process hands its windows to the process's
``RemoteBatcher`` (one per channel layer, event loop and feature fingerprint). The batcher
collects windows from all streams until ``max_batch`` windows are queued or the oldest has
waited ``max_wait_s``, sends them to ``detection-score`` as one ``score.windows`` request with
the batcher's own reply channel, and splits the worker's ``score.result`` back to the streams.
With hundreds of streams this is tens of channel-layer messages per second instead of
thousands; the per-message cost of the Redis channel layer, not the network's forward, is what
limits a scaled deployment.

At most ``max_in_flight`` requests are unanswered at a time: while they are, new windows wait
and go together in the next request as soon as an answer comes (or the batch is full). Under
load the requests grow instead of multiplying. This matters because a daphne process takes its
channel-layer messages one Redis round trip at a time, between everything else its event loop
does: with a busy loop, a fixed one request per ``max_wait_s`` (100 answers a second) came back
faster than the process could take them, and the answers queued in Redis for seconds. A request
unanswered for ``stale_s`` no longer counts as in flight (a worker that died must not stop the
batcher).

A request that fails to send raises the layer's exception for each of its streams, an error
answer raises ``RuntimeError``; how long to wait for a missing answer is the stream's
``ScoringClient``'s choice (``answered_within`` tells it whether workers are alive).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
import weakref

import numpy as np

from .scoring import MAX_BATCH, MAX_WAIT_S
from .scoring_messages import SCORE_CHANNEL, encode_request

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 1
STALE_S = 1.0  # an unanswered request older than this no longer holds the next one back


class RemoteBatcher:
    def __init__(
        self,
        channel_layer,
        features_key: str,
        *,
        max_wait_s: float = MAX_WAIT_S,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
        stale_s: float = STALE_S,
    ) -> None:
        self.layer = channel_layer
        self.max_in_flight = max_in_flight
        self.stale_s = stale_s
        self.held_back = 0  # flushes postponed because max_in_flight requests were unanswered
        self.features_key = features_key
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self.loop = asyncio.get_running_loop()
        self.requests_sent = 0
        self.last_answer_at: float | None = None  # loop time of the newest answer received
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self._queued = 0
        self._timer: asyncio.TimerHandle | None = None
        self._channel: str | None = None
        self._channel_lock = asyncio.Lock()
        self._receiver: asyncio.Task | None = None
        # Unanswered requests: the loop time each was sent and its callers' window counts.
        self._waiting: dict[str, tuple[float, list[tuple[int, asyncio.Future]]]] = {}
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self._sends: set[asyncio.Task] = set()
        self._urgent = False  # a retry is queued: the next flush ignores the in-flight limit
        self._pruned_at = 0.0

    async def submit(self, windows: np.ndarray, *, retry: bool = False) -> asyncio.Future:
        """Queue ``windows``; the future gets ``(probs, version)`` (or the send's error).

        A caller that gives up cancels the future: its windows are then left out of a batch
        not yet sent, and a late answer is dropped. A ``retry`` (its first request timed out)
        goes within ``max_wait_s`` whatever is in flight (the request it repeats is exactly
        what would otherwise hold it back), together with what is queued and with the other
        retries of that moment: when a stall times out every stream at once, that is one
        request, not one per stream (which once took a connection each and exhausted the
        Redis pool).
        """
        await self._ensure_channel()
        future = self.loop.create_future()
        self._pending.append((windows, future))
        self._queued += len(windows)
        if retry:
            self._urgent = True
            if self._timer is not None and self._timer.when() > self.loop.time() + self.max_wait_s:
                self._timer.cancel()  # held back until a stale time: a retry does not wait
                self._timer = None
        if self._queued >= self.max_batch:
            self._flush(force=True)
        elif self._timer is None:
            self._timer = self.loop.call_later(self.max_wait_s, self._flush)
        return future

    def answered_within(self, seconds: float) -> bool:
        """Did a worker answer any of this process's requests in the last ``seconds``?

        True means the workers are alive and a late answer is this process's or the queue's
        delay, not a dead worker: scoring inline would only add load where it is already late.
        """
        return self.last_answer_at is not None and self.loop.time() - self.last_answer_at <= seconds

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._receiver is not None and not self._receiver.done():
            self._receiver.cancel()
            await asyncio.wait({self._receiver}, timeout=5)

    async def _ensure_channel(self) -> None:
        if self._channel is not None and self._receiver is not None and not self._receiver.done():
            return
        async with self._channel_lock:
            if self._channel is None:
                self._channel = await self.layer.new_channel()
            if self._receiver is None or self._receiver.done():
                self._receiver = self.loop.create_task(self._receive())

    def _fresh_sends(self) -> list[float]:
        """Send times of the requests in flight: unanswered and younger than ``stale_s``."""
        now = self.loop.time()
        return [sent_at for sent_at, _ in self._waiting.values() if now - sent_at <= self.stale_s]

    def in_flight(self) -> int:
        """Requests sent and not answered, younger than ``stale_s``."""
        return len(self._fresh_sends())

    def _flush(self, force: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        force = force or self._urgent
        fresh = self._fresh_sends()
        if not force and len(fresh) >= self.max_in_flight:
            # An answer flushes (see _receive); meanwhile look again when the oldest goes stale.
            self.held_back += 1
            oldest = min(fresh)
            wait = max(0.001, oldest + self.stale_s - self.loop.time())
            self._timer = self.loop.call_later(wait, self._flush)
            return
        batch, self._pending, self._queued, self._urgent = self._pending, [], 0, False
        batch = [(w, f) for w, f in batch if not f.done()]  # callers that gave up
        if not batch:
            return
        request_id = f"{self._prefix}-{next(self._ids)}"
        self._waiting[request_id] = (self.loop.time(), [(len(w), f) for w, f in batch])
        windows = np.concatenate([w for w, _ in batch]).astype(np.float32, copy=False)
        task = self.loop.create_task(self._send(request_id, windows))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        self._prune()

    def _prune(self) -> None:
        """Forget requests whose every caller has given up (a worker that died).

        At most once per ``stale_s``: a scan per flush grew with the unanswered requests and,
        under load, took more of the event loop than anything else in the process.
        """
        now = self.loop.time()
        if now - self._pruned_at < self.stale_s:
            return
        self._pruned_at = now
        for rid, (_, members) in list(self._waiting.items()):
            if all(f.done() for _, f in members):
                del self._waiting[rid]

    async def _send(self, request_id: str, windows: np.ndarray) -> None:
        message = encode_request(windows, self._channel, request_id, self.features_key)
        try:
            await self.layer.send(SCORE_CHANNEL, message)
            self.requests_sent += 1
        except Exception as exc:  # Redis down, pool exhausted, channel full
            for _, future in self._waiting.pop(request_id, (0.0, []))[1]:
                if not future.done():
                    future.set_exception(exc)

    async def _receive(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next score() starts a new receiver
                log.warning("scoring replies: channel layer receive failed: %s", exc)
                return
            self.last_answer_at = self.loop.time()
            answered = self._waiting.pop(message.get("request_id", ""), None)
            if self._pending:  # held back while the answer was outstanding: send them now
                self._flush()
            if answered is None:
                continue  # a late answer: its callers already retried or scored inline
            members = answered[1]
            if message.get("error"):
                error = RuntimeError(f"scoring worker: {message['error']}")
                for _, future in members:
                    if not future.done():
                        future.set_exception(error)
                continue
            probs = np.frombuffer(message["probs"], dtype=np.float32)
            version = message.get("version", "")
            offset = 0
            for size, future in members:
                if not future.done():
                    future.set_result((probs[offset : offset + size], version))
                offset += size


# Per channel layer (weakly held), then per event loop and feature fingerprint: the transport
# of one process's requests, like the scorer's model cache.
_BATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def batcher_for(channel_layer, features_key: str) -> RemoteBatcher:
    loop = asyncio.get_running_loop()
    by_key = _BATCHERS.setdefault(channel_layer, {})
    batcher = by_key.get(features_key)
    if batcher is None or batcher.loop is not loop or loop.is_closed():
        batcher = by_key[features_key] = RemoteBatcher(channel_layer, features_key)
    return batcher


async def close_batchers(channel_layer) -> None:
    """Stop the reply receivers of this layer's batchers (before closing the layer's pools)."""
    for batcher in _BATCHERS.pop(channel_layer, {}).values():
        await batcher.close()
