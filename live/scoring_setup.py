"""Starting a live stream's scoring: its decision settings, the scorer, and how alerts are written.

``start_for_consumer`` is what the ingest consumer calls at a stream's first windows; it returns
a ``StreamScoring`` wired to the in-process scorer (embedded mode) or the scoring worker
(``REDIS_URL``), and to this process's alert writers (threads or child processes).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from alerts import services as alert_services
from alerts import writer_process
from alerts.broadcasting import start_broadcaster
from alerts.writer_process import AlertWriter
from detection.artifact_config import ArtifactError, read_model_config
from detection.decision import DecisionConfig
from detection.scoring import decision_defaults, features_key, shared_scorer
from devices.models import Device

from .model_choice import shared_resolver
from .running_updates import RunningUpdates
from .scoring_client import ScoringClient
from .second_opinion import shared_second_opinion
from .stream_scoring import StreamScoring, UpdateAlert
from .yamnet_remote import remote_batches

log = logging.getLogger(__name__)


def decision_overrides(device_id: int) -> list[dict]:
    """The overrides of a stream's decision, in the order they apply to the model version's
    defaults (``with_overrides``).

    ``settings.EYESCREAM_DECISION`` (a dict of ``DecisionConfig`` fields) applies to every
    stream, then the ``decision`` dicts of the device's site and of the device
    (``devices/sensitivity.py``), then one ``sensitivity``: the device's, else its site's. Kept
    for the stream's life: a newly promoted version's defaults get the same overrides.
    """
    device = Device.objects.select_related("location__site").get(pk=device_id)
    site = device.location.site
    overrides = [
        dict(getattr(settings, "EYESCREAM_DECISION", {})),
        dict(site.decision or {}),
        dict(device.decision or {}),
    ]
    sensitivity = device.sensitivity if device.sensitivity is not None else site.sensitivity
    if sensitivity is not None:
        overrides.append({"sensitivity": sensitivity})
    return overrides


def with_overrides(decision: DecisionConfig, overrides: list[dict]) -> DecisionConfig:
    """The overrides applied in order; one that does not fit these defaults (e.g. an off
    threshold above the model's on threshold) is left out, with a warning: a stream always
    gets a decision."""
    for values in overrides:
        try:
            decision = decision.with_overrides(**values)
        except (TypeError, ValueError) as exc:
            log.warning("decision override %s left out: %s", values, exc)
    return decision


def _alert_writes() -> tuple[Callable[..., Awaitable[int]], UpdateAlert, Callable]:
    """How this process writes live alerts: ``(open -> id, update, write running scores)``.

    ``settings.EYESCREAM_ALERT_WRITER``: ``"process"`` hands every write to a child process
    of its own (one for openings, one for updates; ``alerts.writer_process``), so that an
    alert's Python does not take turns at the GIL with the event loop that serves the
    streams; a write whose child died is written here, in a thread, instead. ``"thread"``
    writes in threads of this process: in parallel where the database allows concurrent
    writers (PostgreSQL; on one shared database thread a burst of incidents queued behind each
    other's snippet encoding and commit), on the one database thread with SQLite, which has
    one writer. Either way new alerts have a writer of their own: a burst of running
    incidents' updates (one a second each, written for all streams together by
    ``RunningUpdates``) must not delay the next incident's first alert.
    """

    def in_thread(function, kind: str):
        if connection.vendor == "sqlite":  # one writer: the one database thread
            return database_sync_to_async(function)
        return database_sync_to_async(
            function, thread_sensitive=False, executor=_alert_threads(kind)
        )

    def ids(open_in_thread):  # the live path wants the new alert's id, not the row
        async def open_alert(**kwargs) -> int:
            return (await open_in_thread(**kwargs)).pk

        return open_alert

    update_thread = in_thread(alert_services.update_alert, "update")
    running_thread = in_thread(alert_services.update_running_alerts, "update")
    if settings.EYESCREAM_ALERT_WRITER != "process":
        return ids(in_thread(alert_services.open_alert, "open")), update_thread, running_thread

    writers = _writer_processes()

    def in_process(kind: str, write, in_thread_instead, what: str):
        async def written(*args, **kwargs):
            try:
                return await writers[kind].run(write, *args, **kwargs)
            except writer_process.WriterLost:
                log.warning("alert writer %r lost; %s in a thread", kind, what)
                return await in_thread_instead(*args, **kwargs)

        return written

    return (
        # An opening the dead child had committed is found, not stored twice.
        in_process(
            "open",
            writer_process.open_alert,
            ids(in_thread(alert_services.open_alert_once, "open")),
            "opening",
        ),
        in_process("update", writer_process.update_alert, update_thread, "updating"),
        in_process(
            "update", writer_process.update_running_alerts, running_thread, "running scores"
        ),
    )


@functools.cache
def _writer_processes() -> dict:
    """The process's two alert writer processes (``"open"``, ``"update"``), started now."""

    writers = {kind: AlertWriter(kind) for kind in ("open", "update")}
    for writer in writers.values():
        writer.start()
    return writers


@functools.cache
def _alert_threads(kind: str) -> ThreadPoolExecutor:
    """The process's threads that write alerts of one kind (``open`` or ``update``).

    One of each by default (``settings.EYESCREAM_ALERT_THREADS``): an alert's write is mostly
    Python (the ORM, the snippet's encoding, the picture task's dispatch: about 7 ms of CPU
    for an opening, 6 ms for a final update) between short database waits, and every alert
    thread that is ready to run takes turns at the GIL with the event loop that serves all
    the streams. One opening thread keeps up with about 100 openings a second here, several
    times the benchmark's burst; four of each gave a higher p95 in 7 of 10 alternated pairs
    (docs/performance.md, "What the live path does and why").
    """

    return ThreadPoolExecutor(settings.EYESCREAM_ALERT_THREADS, thread_name_prefix=f"alerts-{kind}")


_RUNNING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _running_updates(write) -> RunningUpdates:
    """The process's batched writer of running incidents' scores (one per event loop)."""
    loop = asyncio.get_running_loop()
    running = _RUNNING.get(loop)
    if running is None:
        running = _RUNNING[loop] = RunningUpdates(write)
    return running


@functools.cache
def _freeze_loaded_objects() -> None:
    """Once per process, when its first stream starts scoring: everything loaded so far
    (Django, the feature code, in embedded mode torch and the model) is moved out of the
    garbage collector's reach. A full collection in a busy ingest process otherwise walked all
    of it, 130-170 ms with the event loop stopped, a few times during each burst of alerts
    (docs/performance.md, "What the live path does and why"). Those objects live as long as
    the process."""
    gc.freeze()


@functools.cache
def _warn_no_model(reason: str) -> None:
    log.warning("live streams are not scored: %s", reason)


async def start_for_consumer(consumer) -> StreamScoring | bool:
    """Scoring for an ingest consumer that has ``stream``, ``device_id``, ``channel_layer``
    and ``channel_name``: in-process in embedded mode, the scoring worker with ``REDIS_URL``.

    ``False`` (windows are only counted, one warning per process) when there is no model.
    """

    resolver = shared_resolver()
    await resolver.ready()
    site_id = getattr(consumer, "site_id", None)
    choice = resolver.current(site_id)
    if choice is None:
        try:
            read_model_config(settings.EYESCREAM_MODEL_DIR)
        except ArtifactError as exc:
            _warn_no_model(str(exc))
        return False
    # Threads, or the writer processes (started by the first stream this process scores).
    open_alert, update_in_db, write_running = _alert_writes()

    async def update_alert(alert_id: int, **kwargs) -> None:
        running = _running_updates(write_running)  # the process's, made at the first update
        if "ended_at" not in kwargs:  # a running incident: batched with the other streams'
            running.put(
                alert_id,
                alert_services.RunningScores(
                    kwargs["peak_score"], kwargs["mean_score"], kwargs["score_curve"]
                ),
            )
            return
        await running.settle(alert_id)  # no older batched scores after the final ones
        await update_in_db(alert_id, **kwargs)

    overrides = await database_sync_to_async(decision_overrides)(consumer.device_id)
    defaults = decision_defaults(choice.config)
    decision = with_overrides(defaults, overrides)
    # The alert writers' broadcasts are sent from this loop; the writers do not wait for them.
    start_broadcaster(consumer.channel_layer)
    scaled = bool(getattr(settings, "REDIS_URL", ""))
    reply_timeout_s = float(getattr(settings, "EYESCREAM_SCORE_TIMEOUT_S", 1.0))
    if not scaled:  # load the network now (in the scoring thread), not at the first windows
        try:
            await shared_scorer(choice.path).ensure_loaded()
        except Exception as exc:  # counted per request as failures; the stream goes on
            _warn_no_model(f"cannot load {choice.path}: {exc}")
    client = ScoringClient(
        None,
        features_key(consumer.stream.cfg),
        channel_layer=consumer.channel_layer if scaled else None,
        reply_timeout_s=reply_timeout_s,
        model_dir=choice.path,
        model_number=choice.number,
    )
    # The second stage's windows: heard by the scoring workers in scaled mode, else here.
    batches = remote_batches(consumer.channel_layer, reply_timeout_s) if scaled else None
    second_opinion = await asyncio.to_thread(
        shared_second_opinion,
        choice.config.get("second_stage"),
        decision.on_threshold,
        defaults.on_threshold,
        batches,
    )

    def model_changed(new_choice):
        """A promotion or rollback: the new version's decision defaults under the same
        overrides, and its second stage (YAMNet is loaded by the resolver beforehand)."""
        new_defaults = decision_defaults(new_choice.config)
        new_decision = with_overrides(new_defaults, overrides)
        stage = shared_second_opinion(
            new_choice.config.get("second_stage"),
            new_decision.on_threshold,
            new_defaults.on_threshold,
            batches,
        )
        return new_decision, stage

    _freeze_loaded_objects()
    return StreamScoring(
        consumer.stream,
        client,
        decision,
        open_alert,
        update_alert,
        consumer.device_id,
        owner=consumer.channel_name,
        second_opinion=second_opinion,
        max_snippet_s=settings.EYESCREAM_SNIPPET_MAX_S,
        model_choice=lambda: resolver.current(site_id),
        model_changed=model_changed,
    )
