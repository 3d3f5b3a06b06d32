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
load the requests grow instead of multiplying. A daphne process takes its channel-layer
messages one Redis round trip at a time, between everything else its event loop does: a fixed
one request per ``max_wait_s`` came back faster than a busy process could take the answers.
A request unanswered for ``stale_s`` no longer counts as in flight (a worker that died must not
stop the batcher).

Missing answers are the batcher's business, not each stream's: one watchdog timer per process
(not a timed wait per stream and frame, which was a tenth of a busy process's CPU) looks at
each request when its ``reply_timeout_s`` runs out:

* a worker answered anything in the last ``reply_timeout_s``, or this process's own event loop
  was behind (the watchdog itself ran late: the answer may be waiting unread): the request is
  **late**, counted, and waited for, up to ``late_limit_s``;
* otherwise the request is sent once more (a **retry**: one message for every stream in it);
* a retried request that times out again, or any request older than ``late_limit_s``, fails
  with ``ScoringTimeout``, and its streams score those windows inline.

A request that fails to send fails its streams' futures with the layer's exception; an error
answer with ``RuntimeError``. Counts go to each member's ``stats`` (``ClientStats``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
import weakref
from dataclasses import dataclass

import numpy as np

from detection.scoring import MAX_BATCH, MAX_WAIT_S

from .reply_channel import ReplyChannel
from .scoring_messages import SCORE_CHANNEL, Part, encode_request

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 1
STALE_S = 1.0  # an unanswered request older than this no longer holds the next one back
REPLY_TIMEOUT_S = 1.0
LATE_LIMIT_S = 10.0  # longest wait for an answer while workers are answering other requests


class ScoringTimeout(TimeoutError):
    """No scoring worker answered a request (see the module doc)."""


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


@dataclass
class _Request:
    first_sent_at: float
    deadline: float  # loop time the watchdog looks at it next
    parts: list[Part]  # (windows, step) of each member, kept for one retry
    members: list[tuple[int, asyncio.Future, ClientStats]]
    sent_at: float = 0.0
    retried: bool = False

    def live(self) -> list[tuple[int, asyncio.Future, ClientStats]]:
        return [m for m in self.members if not m[1].done()]


class RemoteBatcher:
    def __init__(
        self,
        channel_layer,
        features_key: str,
        *,
        model: str = "",
        max_wait_s: float = MAX_WAIT_S,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
        stale_s: float = STALE_S,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        late_limit_s: float = LATE_LIMIT_S,
    ) -> None:
        self.layer = channel_layer
        self.features_key = features_key
        self.model = model  # the model version's folder the workers score with ("": theirs)
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.stale_s = stale_s
        self.reply_timeout_s = reply_timeout_s
        self.late_limit_s = late_limit_s
        self.loop = asyncio.get_running_loop()
        self.requests_sent = 0
        self.held_back = 0  # flushes postponed because max_in_flight requests were unanswered
        self.last_answer_at: float | None = None  # loop time of the newest answer received
        self._pending: list[tuple[np.ndarray, asyncio.Future, ClientStats, int]] = []
        self._queued = 0
        self._timer: asyncio.TimerHandle | None = None
        self.replies = ReplyChannel(channel_layer, self._answer, "scoring replies")
        self._waiting: dict[str, _Request] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self._tasks: set[asyncio.Task] = set()
        self.late_answers = 0  # requests the watchdog found late (all streams of the process)

    def submit(
        self, windows: np.ndarray, stats: ClientStats | None = None, step: int = 0
    ) -> asyncio.Future:
        """Queue ``windows``; the future gets ``(probs, version)`` or fails (module doc).

        ``step``: the windows start ``step`` columns apart (``scoring_messages.uniform_step``);
        where their columns overlap accordingly they travel as their columns; 0: whole.
        Never waits. A caller that gives up cancels the future: its windows are then left out
        of a batch not yet sent, and a late answer is dropped.
        """
        future = self.loop.create_future()
        stats = stats if stats is not None else ClientStats()
        self._pending.append((windows, future, stats, step))
        self._queued += len(windows)
        if self._queued >= self.max_batch:
            self._flush(force=True)
        elif self._timer is None:
            self._timer = self.loop.call_later(self.max_wait_s, self._flush)
        return future

    def answered_within(self, seconds: float) -> bool:
        """Did a worker answer any of this process's requests in the last ``seconds``?"""
        return self.last_answer_at is not None and self.loop.time() - self.last_answer_at <= seconds

    def in_flight(self) -> int:
        """Requests sent and not answered, younger than ``stale_s``."""
        return len(self._fresh_sends())

    async def close(self) -> None:
        """Stop the timers and the reply channel's reader."""
        for handle in (self._timer, self._watchdog):
            if handle is not None:
                handle.cancel()
        await self.replies.close()

    # ------------------------------------------------------------------ sending

    def _fresh_sends(self) -> list[float]:
        now = self.loop.time()
        return [r.sent_at for r in self._waiting.values() if now - r.sent_at <= self.stale_s]

    def _flush(self, force: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        fresh = self._fresh_sends()
        if not force and len(fresh) >= self.max_in_flight:
            # An answer flushes (see _receive); meanwhile look again when the oldest goes stale.
            self.held_back += 1
            wait = max(0.001, min(fresh) + self.stale_s - self.loop.time())
            self._timer = self.loop.call_later(wait, self._flush)
            return
        batch, self._pending, self._queued = self._pending, [], 0
        batch = [item for item in batch if not item[1].done()]  # callers that gave up
        if not batch:
            return
        now = self.loop.time()
        request_id = f"{self._prefix}-{next(self._ids)}"
        parts = [(w, step) for w, _, _, step in batch]
        self._waiting[request_id] = _Request(
            first_sent_at=now,
            sent_at=now,
            deadline=now + self.reply_timeout_s,
            parts=parts,
            members=[(len(w), f, s) for w, f, s, _ in batch],
        )
        self._spawn(self._send(request_id, parts))
        self._arm_watchdog(now + self.reply_timeout_s)

    def _spawn(self, coro) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, request_id: str, parts: list[Part]) -> None:
        try:
            message = encode_request(
                parts, await self.replies.name(), request_id, self.features_key, model=self.model
            )
            await self.layer.send(SCORE_CHANNEL, message)
            self.requests_sent += 1
        except Exception as exc:  # Redis down, pool exhausted, channel full
            request = self._waiting.pop(request_id, None)
            for _, future, _ in request.members if request else []:
                if not future.done():
                    _fail_quietly(future, exc)

    # ------------------------------------------------------------------ answers

    def _answer(self, message: dict) -> None:
        """A worker's answer (``ReplyChannel`` hands each one here)."""
        self.last_answer_at = self.loop.time()
        answered = self._waiting.pop(message.get("request_id", ""), None)
        if self._pending:  # held back while the answer was outstanding: send them now
            self._flush()
        if answered is None:
            return  # a late answer: its callers already gave up
        if message.get("error"):
            for _, future, _ in answered.members:
                if not future.done():
                    _fail_quietly(future, RuntimeError(f"scoring worker: {message['error']}"))
            return
        probs = np.frombuffer(message["probs"], dtype=np.float32)
        version = message.get("version", "")
        offset = 0
        for size, future, _ in answered.members:
            if not future.done():
                future.set_result((probs[offset : offset + size], version))
            offset += size

    # ------------------------------------------------------------------ missing answers

    def _arm_watchdog(self, deadline: float | None = None) -> None:
        """Wake at the earliest deadline (``deadline``: that of a request just sent)."""
        if self._watchdog is not None:
            if deadline is None or deadline >= self._watchdog.when():
                return
            self._watchdog.cancel()  # the timeout was shortened meanwhile
        elif not self._waiting:
            return
        due = min(r.deadline for r in self._waiting.values())
        self._watchdog = self.loop.call_at(due, self._check, due)

    def _check(self, due: float) -> None:
        """Decide about every request whose deadline has passed (module doc)."""
        self._watchdog = None
        now = self.loop.time()
        behind = now - due > self.reply_timeout_s / 2  # this process's loop ran late
        alive = self.answered_within(self.reply_timeout_s)
        for request_id, request in list(self._waiting.items()):
            live = request.live()
            if not live:
                del self._waiting[request_id]  # every caller gave up
                continue
            if now < request.deadline:
                continue
            request.deadline = now + self.reply_timeout_s
            if now - request.first_sent_at >= self.late_limit_s:
                self._fail(request_id, live, f"no answer within {self.late_limit_s:g} s")
            elif alive or behind:
                for _, _, stats in live:
                    stats.late += 1
                self.late_answers += 1
                if worth_logging(self.late_answers):
                    log.warning(
                        "scoring answer late but workers are answering; waiting "
                        "(%d so far in this process)",
                        self.late_answers,
                    )
            elif not request.retried:
                request.retried, request.sent_at = True, now
                for _, _, stats in live:
                    stats.retries += 1
                self._spawn(self._send(request_id, request.parts))
            else:
                self._fail(request_id, live, "no scoring worker answered twice")
        self._arm_watchdog()

    def _fail(self, request_id: str, live, reason: str) -> None:
        del self._waiting[request_id]
        for _, future, _ in live:
            _fail_quietly(future, ScoringTimeout(reason))


def worth_logging(count: int) -> bool:
    """Log a repeated warning at its 1st, 10th, 100th and every 1000th occurrence."""
    return count in (1, 10, 100) or count % 1000 == 0


def _fail_quietly(future: asyncio.Future, error: BaseException) -> None:
    """Fail ``future`` without asyncio's "exception never retrieved" log if nobody awaits it
    (its stream ended meanwhile): whoever awaits it still gets ``error``."""
    future.set_exception(error)
    future.exception()


# Per channel layer (weakly held), then per event loop, feature fingerprint and model version:
# the transport of one process's requests, like the scorer's model cache.
_BATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def batcher_for(channel_layer, features_key: str, model: str = "", **options) -> RemoteBatcher:
    """The process's batcher for windows of ``features_key`` to be scored by the model version
    in folder ``model`` ("": the worker's default); ``options`` (``RemoteBatcher`` keywords)
    apply when it is made."""
    loop = asyncio.get_running_loop()
    by_key = _BATCHERS.setdefault(channel_layer, {})
    batcher = by_key.get((features_key, model))
    if batcher is None or batcher.loop is not loop or loop.is_closed():
        batcher = by_key[(features_key, model)] = RemoteBatcher(
            channel_layer, features_key, model=model, **options
        )
    return batcher


async def close_batchers(channel_layer) -> None:
    """Stop the reply receivers of this layer's batchers (before closing the layer's pools)."""
    for batcher in _BATCHERS.pop(channel_layer, {}).values():
        await batcher.close()
