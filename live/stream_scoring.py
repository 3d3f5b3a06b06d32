"""One live stream's scoring: level gate, scoring requests, decisions, alert snippets.

``StreamScoring`` is what the ingest consumer's ``on_windows`` hands windows to. It needs only
the stream's ``DeviceStream``-like object (``cfg``, ``ring`` with ``level_dbfs``, ``window_times``,
``stream_time_s``), a ``ScoringClient``, a ``DecisionConfig`` and two async alert callables, so
it is tested without Django. With a ``SecondOpinion`` (a model with a second stage) the scores
are rescored by YAMNet before the decision sees them.

Snippet policy: on ``opened`` the alert gets the audio from ``PRE_ROLL_S`` before the incident's
start to now; the snippet keeps growing from the ring buffer while the incident lasts and on
``closed`` it is finished ``POST_ROLL_S`` after the end and stored with the final scores: the
whole incident, pre-roll to post-roll. Its upper bound is ``max_snippet_s`` (the setting
``EYESCREAM_SNIPPET_MAX_S``, ``MAX_SNIPPET_S`` by default): an incident longer than that keeps
its first ``max_snippet_s`` seconds of audio and score curve, while its end time and scores
cover all of it. Stream time becomes wall-clock time through ``StreamClock``: the device's
capture time when its hello gave one (``stream.capture_zero``), else arrival times; the alert
records which (``time_source``) and the connection that owns it (``stream``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import numpy as np

from detection.decision import (
    CLOSED,
    OPENED,
    DecisionConfig,
    DecisionEvent,
    IncidentTracker,
    LevelGate,
)

from . import metrics
from .stream_clock import StreamClock

log = logging.getLogger(__name__)

PRE_ROLL_S = 2.0
POST_ROLL_S = 1.0
MAX_SNIPPET_S = 120.0  # the default upper bound of one alert's snippet (EYESCREAM_SNIPPET_MAX_S)

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
        second_opinion=None,
        max_snippet_s: float = MAX_SNIPPET_S,
        model_choice: Callable[[], object] | None = None,
        model_changed: Callable[[object], tuple] | None = None,
    ) -> None:
        if not max_snippet_s > PRE_ROLL_S + POST_ROLL_S:
            raise ValueError(
                f"max_snippet_s must exceed the pre- and post-roll ({PRE_ROLL_S + POST_ROLL_S} s)"
            )
        self.max_snippet_s = float(max_snippet_s)
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
        self.second_opinion = second_opinion  # ``SecondOpinion``: YAMNet on flagged windows
        self._started_at: datetime | None = None  # the open incident's start, wall clock
        self.version = ""
        # The registered version whose scores the decision saw last (kept on alerts), and
        # where the stream's current version comes from (``live.model_choice``).
        self.model_number: int | None = getattr(client, "model_number", None)
        self.model_choice = model_choice
        # ``(DecisionConfig, SecondOpinion | None)`` of a newly chosen version.
        self.model_changed = model_changed
        self.model_switches = 0
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
        self._window_end_s = 0.0  # stream time of the newest scored window's end

    # ------------------------------------------------------------------ windows in

    def push(self, windows: list[tuple[int, np.ndarray]]) -> None:
        """Queue new windows: gated ones count as probability 0, the others are scored."""
        if not windows:
            return
        self._follow_model_choice()
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

    def _follow_model_choice(self) -> None:
        """Switch to the version now active for the stream's site, between two windows, with
        its decision defaults and second stage (``model_changed``); a version computing other
        features than the stream's waits for the next connection."""
        if self.model_choice is None:
            return
        choice = self.model_choice()
        if choice is None or (choice.path, choice.number) == (
            self.client.model_dir,
            self.client.model_number,
        ):
            return
        if choice.features_key != self.client.features_key:
            return
        log.info(
            "device %s: model version %s -> %s",
            self.device_id,
            self.client.model_number,
            choice.number,
            extra={"device_id": self.device_id},
        )
        if self.model_changed is not None:
            try:
                decision, second_opinion = self.model_changed(choice)
            except Exception:  # keep the version the stream has: it still works
                log.exception("device %s: model version %s not taken", self.device_id, choice)
                return
            self.tracker.set_config(decision)
            self.gate = LevelGate(decision.level_gate_dbfs)
            self.second_opinion = second_opinion
        self.client.model_dir, self.client.model_number = choice.path, choice.number
        self.model_switches += 1

    def _submit(self, cols: list[int], windows: list[np.ndarray], scored: bool) -> None:
        if scored:
            self.client.submit(cols, np.stack(windows))
        else:
            self.client.submit_known(cols, np.zeros(len(cols), dtype=np.float32), self.version)

    # ------------------------------------------------------------------ scores back

    async def on_scores(self, cols: list[int], probs: np.ndarray, version: str) -> None:
        if self.second_opinion is not None:
            probs = await self.second_opinion.rescore(
                self.stream, cols, probs, incident_open=self.tracker.is_open
            )
            version = f"{version}+{self.second_opinion.tag}" if version else version
        if version:
            self.version = version
        self.model_number = getattr(self.client, "scored_by", self.model_number)
        for col, prob in zip(cols, probs, strict=True):
            _, t_end = self.stream.window_times(col)
            self._window_end_s = t_end
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
            heard_at = self._wall(self._window_end_s).timestamp()  # the deciding window's end
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
                    model_number=self.model_number,
                    snippet=self._snippet(),
                    snippet_rate=self.rate,
                    snippet_started_at=self._wall(self._snip_begin / self.rate),
                    stream=self.owner,
                    time_source=self.stream_clock.source,
                )
            )
            await self._opened(asyncio.shield(self._opening))
            if self.alert_id is not None:
                metrics.DETECTION_SECONDS.observe(max(0.0, self.clock() - heard_at))
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
        cap = self._snip_begin + int(self.max_snippet_s * self.rate)
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
        cap = self._snip_begin + int(self.max_snippet_s * self.rate)
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
        end_s = begin_s + self.max_snippet_s
        return [
            [t - begin_s, min(1.0, max(0.0, p))]
            for t, p in incident.scores
            if begin_s <= t <= end_s
        ]

    def _wall(self, stream_s: float) -> datetime:
        return self.stream_clock.wall(stream_s)
