"""One live stream's scoring: level gate, scoring requests, decisions, alert snippets.

``StreamScoring`` is what the ingest consumer's ``on_windows`` hands windows to. It needs only
the stream's ``DeviceStream``-like object (``cfg``, ``ring`` with ``level_dbfs``, ``window_times``,
``stream_time_s``), a ``ScoringClient``, a ``DecisionConfig`` and two async alert callables, so
it is tested without Django.

Snippet policy: on ``opened`` the alert gets the audio from ``PRE_ROLL_S`` before the incident's
start to now; the snippet keeps growing from the ring buffer while the incident lasts (capped at
``MAX_SNIPPET_S``) and on ``closed`` it is finished ``POST_ROLL_S`` after the end and stored with
the final scores. Stream time becomes wall-clock time through ``StreamClock``: the device's
capture time when its hello gave one (``stream.capture_zero``), else arrival times; the alert
records which (``time_source``) and the connection that owns it (``stream``).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np

from .decision import CLOSED, OPENED, DecisionConfig, DecisionEvent, IncidentTracker, LevelGate
from .running_updates import RunningUpdates
from .stream_clock import StreamClock

log = logging.getLogger(__name__)

PRE_ROLL_S = 2.0
POST_ROLL_S = 1.0
MAX_SNIPPET_S = 20.0

OpenAlert = Callable[..., Awaitable[int | None]]
UpdateAlert = Callable[..., Awaitable[None]]


class StreamScoring:
    def __init__(
        self,
        stream,
        client,
        decision: DecisionConfig,
        open_alert: OpenAlert,
        update_alert: UpdateAlert,
        device_id: int,
        clock: Callable[[], float] = time.time,
        owner: str = "",
    ) -> None:
        self.stream = stream
        self.client = client
        self.client.on_scores = self.on_scores
        self.rate = stream.cfg.sample_rate
        self.tracker = IncidentTracker(decision, window_span_s=stream.cfg.window_span_s())
        self.gate = LevelGate(decision.level_gate_dbfs)
        self.open_alert = open_alert
        self.update_alert = update_alert
        self.device_id = device_id
        self.clock = clock
        self.stream_clock = StreamClock(getattr(stream, "capture_zero", None), clock)
        self.owner = owner  # the connection whose stream this is (kept on its alerts)
        self._started_at: datetime | None = None  # the open incident's start, wall clock
        self.version = ""
        self.alert_id: int | None = None
        self.alerts_opened = 0
        self.alert_errors = 0
        # Snippet being collected: absolute ring sample range and the audio so far.
        self._snip_begin = 0
        self._snip_end = 0
        self._snip_parts: list[np.ndarray] = []
        self._collecting = False
        self._closing: DecisionEvent | None = None  # closed, waiting for the post-roll
        self._opening: asyncio.Future | None = None  # open_alert in progress

    # ------------------------------------------------------------------ windows in

    def push(self, windows: list[tuple[int, np.ndarray]]) -> None:
        """Queue new windows: gated ones count as probability 0, the others are scored."""
        if not windows:
            return
        self.stream_clock.observe(self.stream.stream_time_s)
        run_cols: list[int] = []
        run_windows: list[np.ndarray] = []
        run_scored = True
        for col, window in windows:
            t0, t1 = self.stream.window_times(col)
            scored = self.gate.passes(self.stream.ring.level_dbfs(t0, t1))
            if run_cols and scored != run_scored:
                self._submit(run_cols, run_windows, run_scored)
                run_cols, run_windows = [], []
            run_scored = scored
            run_cols.append(col)
            run_windows.append(window)
        self._submit(run_cols, run_windows, run_scored)

    def _submit(self, cols: list[int], windows: list[np.ndarray], scored: bool) -> None:
        if scored:
            self.client.submit(cols, np.stack(windows))
        else:
            self.client.submit_known(cols, np.zeros(len(cols), dtype=np.float32), self.version)

    # ------------------------------------------------------------------ scores back

    async def on_scores(self, cols: list[int], probs: np.ndarray, version: str) -> None:
        if version:
            self.version = version
        for col, prob in zip(cols, probs, strict=True):
            _, t_end = self.stream.window_times(col)
            for event in self.tracker.update(t_end, float(prob)):
                await self._on_event(event)
        self._collect()
        await self._finish_if_ready()

    async def close(self) -> None:
        """End of stream: close an open incident with the audio there is."""
        if self._opening is not None:  # opening was interrupted: wait for the alert's id
            await self._opened(self._opening)
        for event in self.tracker.finish():
            await self._on_event(event)
        self._collect()
        await self._finish_if_ready(force=True)

    async def _on_event(self, event: DecisionEvent) -> None:
        incident = event.incident
        if event.kind == OPENED:
            await self._finish_if_ready(force=True)  # a previous incident still collecting
            begin = max(0, int(math.floor((incident.started_s - PRE_ROLL_S) * self.rate)))
            self._snip_begin = max(begin, self.stream.ring.start)
            self._snip_end = self._snip_begin
            self._snip_parts = []
            self._collecting = True
            self._collect()
            self.alert_id = None
            self._started_at = self._wall(incident.started_s)
            # A task of its own: a stream that ends meanwhile (its delivery cancelled) must
            # still learn the new alert's id, to give it its end and full snippet in close().
            self._opening = asyncio.ensure_future(
                self.open_alert(
                    device_id=self.device_id,
                    started_at=self._started_at,
                    peak_score=incident.peak_score,
                    mean_score=incident.mean_score,
                    score_curve=self._curve(incident),
                    model_version=self.version,
                    snippet=self._snippet(),
                    snippet_rate=self.rate,
                    snippet_started_at=self._wall(self._snip_begin / self.rate),
                    stream=self.owner,
                    time_source=self.stream_clock.source,
                )
            )
            await self._opened(asyncio.shield(self._opening))
        elif event.kind == CLOSED:
            self._closing = event
        elif self.alert_id is not None:  # updated
            await self._update(incident)

    async def _opened(self, opening: Awaitable[int | None]) -> None:
        try:
            self.alert_id = await opening
            self.alerts_opened += 1
        except Exception:
            self.alert_errors += 1
            log.exception("device %s: could not open an alert", self.device_id)
        finally:
            self._opening = None

    def _collect(self) -> None:
        """Append the ring audio that arrived since the last call (up to the snippet cap)."""
        if not self._collecting:
            return
        cap = self._snip_begin + int(MAX_SNIPPET_S * self.rate)
        stop = min(self.stream.ring.end, cap)
        if self._closing is not None:
            stop = min(stop, self._post_roll_end())
        if stop > self._snip_end:
            self._snip_parts.append(self.stream.ring.samples(self._snip_end, stop))
            self._snip_end = stop

    def _post_roll_end(self) -> int:
        return int(math.ceil((self._closing.incident.ended_s + POST_ROLL_S) * self.rate))

    async def _finish_if_ready(self, force: bool = False) -> None:
        if self._closing is None:
            return
        cap = self._snip_begin + int(MAX_SNIPPET_S * self.rate)
        if not force and self._snip_end < min(self._post_roll_end(), cap):
            return
        event, self._closing = self._closing, None
        if self.alert_id is not None:
            await self._update(event.incident, final=True)
        self.alert_id = None
        self._collecting = False
        self._snip_parts = []

    async def _update(self, incident, final: bool = False) -> None:
        kwargs = {}
        if final:
            kwargs = {
                # Not before its start, even if a burst of re-sent audio moved the clock since.
                "ended_at": max(self._wall(incident.ended_s), self._started_at),
                "snippet": self._snippet(),
                "snippet_rate": self.rate,
                "snippet_started_at": self._wall(self._snip_begin / self.rate),
            }
        try:
            await self.update_alert(
                self.alert_id,
                peak_score=incident.peak_score,
                mean_score=incident.mean_score,
                score_curve=self._curve(incident),
                **kwargs,
            )
        except Exception:
            self.alert_errors += 1
            log.exception("device %s: could not update alert %s", self.device_id, self.alert_id)

    # ------------------------------------------------------------------ helpers

    def _snippet(self) -> np.ndarray:
        if not self._snip_parts:
            return np.zeros(0, dtype=np.float32)
        if len(self._snip_parts) > 1:
            self._snip_parts = [np.concatenate(self._snip_parts)]
        return self._snip_parts[0]

    def _curve(self, incident) -> list[list[float]]:
        begin_s = self._snip_begin / self.rate
        end_s = begin_s + MAX_SNIPPET_S
        return [
            [t - begin_s, min(1.0, max(0.0, p))]
            for t, p in incident.scores
            if begin_s <= t <= end_s
        ]

    def _wall(self, stream_s: float) -> datetime:
        return self.stream_clock.wall(stream_s)


# --------------------------------------------------------------------------- Django glue


def live_decision_config(device_id: int) -> DecisionConfig:
    """The active model's decision defaults, then settings, site and device overrides.

    ``settings.EYESCREAM_DECISION`` (a dict of ``DecisionConfig`` fields) applies to every
    stream; a ``sensitivity`` (0..1) or ``decision`` dict on the site or device row, where the
    data model has them, applies to that site or device.
    """
    from django.conf import settings

    from devices.models import Device

    from .artifacts import ArtifactError
    from .scoring import model_defaults

    try:
        _, decision = model_defaults(settings.EYESCREAM_MODEL_DIR)
    except ArtifactError:
        decision = DecisionConfig()
    decision = decision.with_overrides(**getattr(settings, "EYESCREAM_DECISION", {}))
    device = Device.objects.select_related("location__site").get(pk=device_id)
    for row in (device.location.site, device):
        decision = decision.with_overrides(
            **(getattr(row, "decision", None) or {}), sensitivity=getattr(row, "sensitivity", None)
        )
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
    from channels.db import database_sync_to_async
    from django.conf import settings
    from django.db import connection

    from alerts import services

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

    update_thread = in_thread(services.update_alert, "update")
    running_thread = in_thread(services.update_running_alerts, "update")
    if settings.EYESCREAM_ALERT_WRITER != "process":
        return ids(in_thread(services.open_alert, "open")), update_thread, running_thread

    from alerts import writer_process

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
            ids(in_thread(services.open_alert_once, "open")),
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
    from alerts.writer_process import AlertWriter

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
    (docs/performance.md, "one alert thread of each kind").
    """
    from django.conf import settings

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
    (docs/performance.md, "fifth session"). Those objects live as long as the process."""
    gc.freeze()


@functools.cache
def _warn_no_model(reason: str) -> None:
    log.warning("live streams are not scored: %s", reason)


async def start_for_consumer(consumer) -> StreamScoring | bool:
    """Scoring for an ingest consumer that has ``stream``, ``device_id``, ``channel_layer``
    and ``channel_name``: in-process in embedded mode, the scoring worker with ``REDIS_URL``.

    ``False`` (windows are only counted, one warning per process) when there is no model.
    """
    from channels.db import database_sync_to_async
    from django.conf import settings

    from alerts import services as alert_services
    from alerts.broadcasting import start_broadcaster

    from .artifacts import ArtifactError, read_model_config
    from .scoring import features_key
    from .scoring_client import ScoringClient

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

    decision = await database_sync_to_async(live_decision_config)(consumer.device_id)
    # The alert writers' broadcasts are sent from this loop; the writers do not wait for them.
    start_broadcaster(consumer.channel_layer)
    scaled = bool(getattr(settings, "REDIS_URL", ""))
    if not scaled:  # load the network now (in the scoring thread), not at the first windows
        from .scoring import shared_scorer

        try:
            await shared_scorer().ensure_loaded()
        except Exception as exc:  # counted per request as failures; the stream goes on
            _warn_no_model(f"cannot load {settings.EYESCREAM_MODEL_DIR}: {exc}")
    client = ScoringClient(
        None,
        features_key(consumer.stream.cfg),
        channel_layer=consumer.channel_layer if scaled else None,
        reply_timeout_s=float(getattr(settings, "EYESCREAM_SCORE_TIMEOUT_S", 1.0)),
    )
    _freeze_loaded_objects()
    return StreamScoring(
        consumer.stream,
        client,
        decision,
        open_alert,
        update_alert,
        consumer.device_id,
        owner=consumer.channel_name,
    )
