"""The scoring worker: ``python manage.py runworker detection-score``.

Stateless: each ``score.windows`` message is scored by the process's shared ``Scorer`` (which
batches across every request in flight) and answered with ``score.result`` on the message's
``reply_channel``. Run as many workers as needed; the channel layer spreads messages over them.

The worker's Scorer does not wait for more requests before a forward (``WORKER_MAX_WAIT_S``):
each request is already a batch (an ingest process's windows of the last few milliseconds),
and requests that arrive while a forward runs are taken together into the next one. Waiting
the in-process ``MAX_WAIT_S`` here would add it to every round trip of every stream.
"""

from __future__ import annotations

import asyncio
import logging

from channels.consumer import AsyncConsumer
from django.conf import settings

from detection.scoring import shared_scorer

from . import metrics
from .heartbeat import beat_forever
from .scoring_messages import decode_windows, result_message

log = logging.getLogger(__name__)

WORKER_MAX_WAIT_S = 0.0


class ScoringWorkerConsumer(AsyncConsumer):
    """Channels hands one message at a time to a consumer, so each request gets its own task:
    requests from many streams then wait in the Scorer's queue together and share a forward."""

    async def __call__(self, scope, receive, send):
        self._tasks: set[asyncio.Task] = set()
        scorer = shared_scorer(settings.EYESCREAM_MODEL_DIR)
        scorer.max_wait_s = WORKER_MAX_WAIT_S
        metrics.observe_scorer(scorer)
        await scorer.ensure_loaded()
        log.info("scoring worker ready, model %s", scorer.version)
        beat = None
        if settings.REDIS_URL:  # live.heartbeat: /readyz counts the workers alive
            beat = asyncio.get_running_loop().create_task(
                beat_forever(
                    settings.REDIS_URL, settings.EYESCREAM_HEARTBEAT_INTERVAL_S, scorer.version
                )
            )
        try:
            await super().__call__(scope, receive, send)
        finally:
            if beat is not None:
                beat.cancel()

    async def score_windows(self, message: dict) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: dict) -> None:
        request_id = message.get("request_id", "")
        try:
            windows = decode_windows(message)
            probs, version = await shared_scorer(settings.EYESCREAM_MODEL_DIR).score(
                windows, key=message.get("features")
            )
            reply = result_message(request_id, probs, version)
        except Exception as exc:
            log.warning("request %s not scored: %s", request_id, exc)
            reply = result_message(request_id, None, "", error=str(exc) or type(exc).__name__)
        try:
            await self.channel_layer.send(message["reply_channel"], reply)
        except Exception:
            log.exception("could not answer %s", request_id)
