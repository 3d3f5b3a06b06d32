"""The second stage heard by the scoring workers (scaled mode).

In scaled mode a daphne process sends its streams' batches of flagged windows to
``detection-score`` (``live.yamnet_messages``) instead of running YAMNet beside its event loop:
the workers already spread over cores and batch across every ingest process, and daphne's
event loop keeps its core for the sockets. ``RemoteYamnet`` is the ``run`` of the process's
``BatchedYamnet``: one batch in flight per process (cut into up to ``PARALLEL`` requests when it
is big, for several workers to hear at once), the requests that wait meanwhile going together
in the next. A request with no answer within ``timeout_s`` (no worker alive, the
workers too far behind), an error answer, or one the channel layer could not send is scored
here, in the process's own YAMNet thread, and counted (``inline``, ``eyescream_yamnet_inline``);
an answer that comes later is dropped. After a request no worker answered, the next ones are
scored here at once (a stream must not wait a timeout for each batch while the workers are
down), and one request a second (``PROBE_S``) is still sent to them: the first answer, to it
or to any request, sends the following batches to the workers again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import uuid
import weakref

import numpy as np

from . import metrics
from .reply_channel import ReplyChannel
from .scoring_batcher import worth_logging
from .scoring_messages import SCORE_CHANNEL
from .yamnet_batches import BatchedYamnet, PatchJob, Run, local_run
from .yamnet_messages import encode_patches_request, split_scores

log = logging.getLogger(__name__)

PROBE_S = 1.0  # while no worker answers, one request a second asks them again


class RemoteYamnet:
    def __init__(self, channel_layer, local: Run, timeout_s: float) -> None:
        self.layer = channel_layer
        self.local = local
        self.timeout_s = float(timeout_s)
        self.loop = asyncio.get_running_loop()
        self.requests = 0  # sent to the workers
        self.answered = 0  # answered by a worker in time
        self.inline = 0  # scored here instead
        self.down = False  # the last request went unanswered: score here until a worker answers
        self._probed_at = -math.inf
        self._tasks: set[asyncio.Task] = set()
        self.replies = ReplyChannel(channel_layer, self._answer, "second stage replies")
        self._waiting: dict[str, asyncio.Future] = {}
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    async def __call__(self, jobs: list[PatchJob]) -> list[np.ndarray]:
        if self.down:  # no worker answered the last request: here at once, and ask again
            self._probe(jobs)
            return await self._inline(jobs, "no scoring worker answered the last request")
        request_id = f"{self._prefix}-{next(self._ids)}"
        answer = self._waiting[request_id] = self.loop.create_future()
        try:
            request = encode_patches_request(jobs, await self.replies.name(), request_id)
            await self.layer.send(SCORE_CHANNEL, request)
            self.requests += 1
            scores = split_scores(await asyncio.wait_for(answer, self.timeout_s), jobs)
        except Exception as exc:  # no answer, an error answer, the channel layer failed
            if not isinstance(exc, RuntimeError | ValueError):  # else a worker answered
                self.down = True
            reason = (
                f"no answer within {self.timeout_s:g} s"
                if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}"
            )
        else:
            self.answered += 1
            return scores
        finally:
            self._waiting.pop(request_id, None)
        return await self._inline(jobs, reason)

    async def _inline(self, jobs: list[PatchJob], reason: str) -> list[np.ndarray]:
        self.inline += 1
        metrics.YAMNET_INLINE.inc()
        if worth_logging(self.inline):
            log.warning(
                "second stage: %s; YAMNet scoring inline (%d requests so far)", reason, self.inline
            )
        return await self.local(jobs)

    def _probe(self, jobs: list[PatchJob]) -> None:
        """While the workers are down, send one request a ``PROBE_S`` (not waited for): any
        answer brings the next requests back to the workers."""
        now = self.loop.time()
        if now - self._probed_at < PROBE_S:
            return
        self._probed_at = now

        async def send() -> None:
            try:
                request = encode_patches_request(jobs, await self.replies.name(), "probe")
                await self.layer.send(SCORE_CHANNEL, request)
            except Exception as exc:  # Redis away as well: the next probe tries again
                log.debug("second stage: probe not sent: %s", exc)

        task = self.loop.create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _answer(self, message: dict) -> None:
        self.down = False  # a worker answered (a request, late or not, or a probe)
        answer = self._waiting.get(message.get("request_id", ""))
        if answer is not None and not answer.done():
            answer.set_result(message)  # else a late answer: already scored here

    async def close(self) -> None:
        """Stop the reply channel's reader."""
        await self.replies.close()


# A batch of many windows goes to the workers as up to this many requests at once, so that
# several workers (processes, cores) hear one process's burst (``BatchedYamnet``).
PARALLEL = 4

# Per channel layer (weakly held) and event loop: the process's batches for the workers.
_REMOTE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remote_batches(channel_layer, timeout_s: float) -> BatchedYamnet:
    """The process's streams' second-stage requests, heard by the scoring workers (made at the
    first call on this event loop; ``timeout_s`` applies then)."""
    loop = asyncio.get_running_loop()
    batches = _REMOTE.get(channel_layer)
    if batches is None or batches.run.loop is not loop or loop.is_closed():
        batches = _REMOTE[channel_layer] = BatchedYamnet(
            RemoteYamnet(channel_layer, local_run(), timeout_s), parallel=PARALLEL
        )
    return batches


async def close_remote(channel_layer) -> None:
    """Stop the reply receiver of this layer's remote batches (before closing the layer)."""
    batches = _REMOTE.pop(channel_layer, None)
    if batches is not None:
        await batches.run.close()
