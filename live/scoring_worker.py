"""The scoring worker: ``python manage.py runworker detection-score``.

Stateless: each ``score.windows`` message is scored by the process's shared ``Scorer`` of the
model version the message names (``"model"``: a folder in the model store, or the default
``EYESCREAM_MODEL_DIR``; each batches across every request in flight) and answered with
``score.result`` on the message's ``reply_channel``. Each ``score.patches`` message (the
second stage's flagged windows, ``live.yamnet_messages``) is heard by the process's YAMNet, in
one thread, in batches across every request waiting (``live.yamnet_batches``), and answered
with ``score.patches.result``; YAMNet is loaded with the first model version that has a second
stage. Run as many workers as needed; the channel
layer spreads messages over them. Every ``EYESCREAM_MODEL_REFRESH_S`` the worker reads the
registry's active versions and loads any it does not hold yet (``keep_active_loaded``), so a
promotion finds the new network loaded when the first stream asks for it.

The worker's Scorer does not wait for more requests before a forward (``WORKER_MAX_WAIT_S``):
each request is already a batch (an ingest process's windows of the last few milliseconds),
and requests that arrive while a forward runs are taken together into the next one. Waiting
the in-process ``MAX_WAIT_S`` here would add it to every round trip of every stream.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from django.conf import settings

from detection.scoring import shared_scorer
from registry.store import store_root

from . import metrics
from .heartbeat import beat_forever
from .model_choice import read_choices
from .scoring_messages import decode_windows, result_message
from .yamnet_batches import local_batches, process_yamnet
from .yamnet_messages import decode_patch_jobs, patches_result

log = logging.getLogger(__name__)

WORKER_MAX_WAIT_S = 0.0


def scorer_for(model: str | None):
    """The process's Scorer for a request's ``model`` folder: the default model, or a folder
    inside the model store (nothing else: a message names no arbitrary path)."""
    if not model:
        model_dir = settings.EYESCREAM_MODEL_DIR
    else:
        path = Path(model).resolve()
        allowed = (store_root().resolve(), Path(settings.EYESCREAM_MODEL_DIR).resolve())
        if not any(path == root or root in path.parents for root in allowed):
            raise ValueError(f"model {model} is not in the model store")
        model_dir = model
    scorer = shared_scorer(model_dir)
    if scorer.on_forward is None:
        scorer.max_wait_s = WORKER_MAX_WAIT_S
        metrics.observe_scorer(scorer)
    return scorer


async def keep_active_loaded(interval_s: float) -> None:
    """Load the registry's active versions as they change (a task for the worker's life)."""
    while True:
        try:
            choices = await database_sync_to_async(read_choices, thread_sensitive=False)()
            for _, path in set(choices.values()):
                scorer = scorer_for(path)
                if not scorer.loaded:
                    await scorer.ensure_loaded()
                    log.info("scoring worker: model %s loaded from %s", scorer.version, path)
                if scorer.model.config.get("second_stage"):
                    await asyncio.to_thread(process_yamnet)
        except Exception as exc:  # the database away, a broken version: try again later
            log.warning("scoring worker: active versions not loaded: %s", exc)
        await asyncio.sleep(interval_s)


class ScoringWorkerConsumer(AsyncConsumer):
    """Channels hands one message at a time to a consumer, so each request gets its own task:
    requests from many streams then wait in the Scorer's queue together and share a forward."""

    async def __call__(self, scope, receive, send):
        self._tasks: set[asyncio.Task] = set()
        scorer = scorer_for(None)
        await scorer.ensure_loaded()
        if scorer.model.config.get("second_stage"):  # its first windows find YAMNet loaded
            await asyncio.to_thread(process_yamnet)
        log.info("scoring worker ready, model %s", scorer.version)
        beat = None
        if settings.REDIS_URL:  # live.heartbeat: /readyz counts the workers alive
            beat = asyncio.get_running_loop().create_task(
                beat_forever(
                    settings.REDIS_URL, settings.EYESCREAM_HEARTBEAT_INTERVAL_S, scorer.version
                )
            )
        keeper = asyncio.get_running_loop().create_task(
            keep_active_loaded(float(getattr(settings, "EYESCREAM_MODEL_REFRESH_S", 1.0)))
        )
        try:
            await super().__call__(scope, receive, send)
        finally:
            keeper.cancel()
            if beat is not None:
                beat.cancel()

    async def score_windows(self, message: dict) -> None:
        self._spawn(self._answer(message))

    async def score_patches(self, message: dict) -> None:
        self._spawn(self._hear(message))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: dict) -> None:
        request_id = message.get("request_id", "")
        try:
            windows = decode_windows(message)
            scorer = scorer_for(message.get("model"))
            probs, version = await scorer.score(windows, key=message.get("features"))
            reply = result_message(request_id, probs, version)
        except Exception as exc:
            log.warning("request %s not scored: %s", request_id, exc)
            reply = result_message(request_id, None, "", error=str(exc) or type(exc).__name__)
        await self._reply(message, reply)

    async def _hear(self, message: dict) -> None:
        """The second stage's windows (``live.yamnet_messages``), heard in the worker's YAMNet
        thread together with every other request waiting for it."""
        request_id = message.get("request_id", "")
        try:
            jobs = decode_patch_jobs(message, await asyncio.to_thread(process_yamnet))
            batches = local_batches("worker")
            scores = await asyncio.gather(*(batches.scores(job) for job in jobs))
            reply = patches_result(request_id, scores)
        except Exception as exc:
            log.warning("second-stage request %s not scored: %s", request_id, exc)
            reply = patches_result(request_id, None, error=str(exc) or type(exc).__name__)
        await self._reply(message, reply)

    async def _reply(self, message: dict, reply: dict) -> None:
        try:
            await self.channel_layer.send(message["reply_channel"], reply)
        except Exception:
            log.exception("could not answer %s", reply["request_id"])
