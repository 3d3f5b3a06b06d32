"""From window probabilities to incidents: smoothing, hysteresis, duration, merging, cooldown.

Pure Python, no Django and no torch: one ``IncidentTracker`` per live stream is fed one
``(window end time, probability)`` pair per window and answers with decision events.

How a stream's probabilities become incidents (all times are stream seconds, window *end* times):

* **Smoothing**: the moving average of the last ``smoothing_windows`` probabilities.
* **Hysteresis**: a candidate starts when the smoothed score reaches ``on_threshold`` and stays
  *active* while it is at or above ``off_threshold``.
* **Minimum duration**: the candidate becomes an incident (event ``opened``) once it has been
  active for ``min_duration_s`` (from the end of its first window to the current one); a
  candidate that falls below ``off_threshold`` sooner is discarded.
* **Merging**: an open incident that falls below ``off_threshold`` goes *quiet*; if the score
  reaches ``on_threshold`` again within ``merge_gap_s`` of its last active window the same
  incident continues (event ``updated``), otherwise it closes (event ``closed``) with
  ``ended_s`` = end of its last active window.
* **Cooldown**: after an incident ends, no new incident opens before ``ended_s + cooldown_s``;
  a candidate that is still active when the cooldown ends opens then, one that dies inside it
  is counted in ``suppressed`` (this limits alert storms from a persistent look-alike source).
* **Level gate**: windows quieter than ``level_gate_dbfs`` are not scored at all (``LevelGate``);
  the caller feeds them to the tracker as probability 0 so that incidents still close.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, fields, replace

OPENED, UPDATED, CLOSED = "opened", "updated", "closed"

# Sensitivity 0..1 shifts both thresholds in logit space; 0.5 keeps the model's defaults.
SENSITIVITY_LOGIT_SPAN = 2.0


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _mean(values: deque[float]) -> float:
    """The average, never outside [min, max] (equal values average to exactly that value)."""
    return min(max(math.fsum(values) / len(values), min(values)), max(values))


@dataclass(frozen=True)
class DecisionConfig:
    on_threshold: float = 0.5
    off_threshold: float = 0.35
    smoothing_windows: int = 3
    min_duration_s: float = 0.3
    merge_gap_s: float = 2.0
    cooldown_s: float = 5.0
    level_gate_dbfs: float = -65.0

    def __post_init__(self) -> None:
        if not 0.0 < self.on_threshold < 1.0:
            raise ValueError(f"on_threshold {self.on_threshold} is not in (0, 1)")
        if not 0.0 < self.off_threshold <= self.on_threshold:
            raise ValueError(
                f"off_threshold {self.off_threshold} must be in (0, on_threshold"
                f" {self.on_threshold}]"
            )
        if int(self.smoothing_windows) != self.smoothing_windows or self.smoothing_windows < 1:
            raise ValueError(f"smoothing_windows {self.smoothing_windows} is not a count >= 1")
        for name in ("min_duration_s", "merge_gap_s", "cooldown_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} {value} must be a finite number >= 0")
        if not -120.0 <= self.level_gate_dbfs <= 0.0:
            raise ValueError(f"level_gate_dbfs {self.level_gate_dbfs} is not in [-120, 0]")

    @classmethod
    def from_model(cls, decision: dict | None, threshold: float | None = None) -> DecisionConfig:
        """Defaults of a model artifact: its ``config["decision"]`` (and ``config["threshold"]``).

        A missing ``on_threshold`` is the model's operating ``threshold``; a missing
        ``off_threshold`` is 0.7 of the on threshold. Unknown keys are an error.
        """
        decision = dict(decision or {})
        known = {f.name for f in fields(cls)}
        unknown = set(decision) - known
        if unknown:
            raise ValueError(f"unknown decision parameters: {sorted(unknown)}")
        if "on_threshold" not in decision and threshold is not None:
            decision["on_threshold"] = float(threshold)
        if "off_threshold" not in decision and "on_threshold" in decision:
            decision["off_threshold"] = 0.7 * float(decision["on_threshold"])
        return cls(**decision)

    def with_overrides(self, **changes) -> DecisionConfig:
        """A copy with the given (not ``None``) fields replaced, e.g. a site's or device's.

        ``sensitivity`` (0..1, 0.5 = unchanged) is accepted too and applied after the others.
        """
        sensitivity = changes.pop("sensitivity", None)
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown decision parameters: {sorted(unknown)}")
        out = replace(self, **{k: v for k, v in changes.items() if v is not None})
        return out.with_sensitivity(sensitivity) if sensitivity is not None else out

    def with_on_threshold(self, on_threshold: float) -> DecisionConfig:
        """A copy opening at ``on_threshold``; the off threshold is lowered to it if above."""
        return replace(
            self, on_threshold=on_threshold, off_threshold=min(self.off_threshold, on_threshold)
        )

    def with_sensitivity(self, sensitivity: float) -> DecisionConfig:
        """Both thresholds shifted in logit space: 1 = most sensitive, 0 = least, 0.5 = as is."""
        if not 0.0 <= sensitivity <= 1.0:
            raise ValueError(f"sensitivity {sensitivity} is not in [0, 1]")
        shift = (0.5 - sensitivity) * 2.0 * SENSITIVITY_LOGIT_SPAN
        return replace(
            self,
            on_threshold=_sigmoid(_logit(self.on_threshold) + shift),
            off_threshold=_sigmoid(_logit(self.off_threshold) + shift),
        )


@dataclass
class Incident:
    """One detected scream (or several merged); times in stream seconds."""

    started_s: float  # start of the first window that reached the on threshold
    ended_s: float | None  # end of the last active window; None while open
    peak_score: float
    mean_score: float
    scores: list[tuple[float, float]] = field(default_factory=list)  # (window end, smoothed)
    opened_s: float = 0.0  # end of the window whose score opened the incident


@dataclass(frozen=True)
class DecisionEvent:
    kind: str  # "opened" | "updated" | "closed"
    incident: Incident  # a snapshot: later windows do not change it


class LevelGate:
    """Skips scoring of near-silent windows and counts them."""

    def __init__(self, level_gate_dbfs: float) -> None:
        self.level_gate_dbfs = level_gate_dbfs
        self.scored = 0
        self.gated = 0

    def passes(self, level_dbfs: float) -> bool:
        if level_dbfs < self.level_gate_dbfs:
            self.gated += 1
            return False
        self.scored += 1
        return True


class IncidentTracker:
    """Per-stream decision state. Feed windows in time order with ``update``.

    ``window_span_s`` (seconds one window covers) dates an incident's start at the start of its
    first window; ``update_interval_s`` rate-limits ``updated`` events while an incident is
    active (a merge after a quiet gap always gives one at once); ``max_curve_points`` bounds the
    score curve kept for one incident.
    """

    def __init__(
        self,
        config: DecisionConfig,
        window_span_s: float = 0.0,
        update_interval_s: float = 1.0,
        max_curve_points: int = 600,
    ) -> None:
        self.config = config
        self.window_span_s = window_span_s
        self.update_interval_s = update_interval_s
        self.max_curve_points = max_curve_points
        self._history: deque[float] = deque(maxlen=int(config.smoothing_windows))
        self._incident: Incident | None = None
        self._is_open = False
        self._active = False
        self._first_active_s = 0.0
        self._last_active_s = 0.0
        self._last_update_s = 0.0
        self._sum = 0.0
        self._count = 0
        self._cooldown_until = -math.inf
        self._waited_cooldown = False
        # Counters (what happened to candidates and windows).
        self.windows = 0
        self.opened = 0
        self.discarded = 0  # candidates shorter than min_duration_s
        self.suppressed = 0  # candidates that died inside a cooldown

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def is_active(self) -> bool:
        """A candidate or an open incident at or above the off threshold: every window counts.
        Otherwise (nothing started, or an open incident gone quiet) a window whose smoothed
        score is under the on threshold changes no opening (see ``seed_history``)."""
        return self._active

    def seed_history(self, probs) -> None:
        """Let the next window average with ``probs``, the probabilities of the windows just
        before it, as if they had been fed: for a caller counting openings that skips windows
        which cannot change them, as ``alert_figures.openings`` does. Those are, while not
        ``is_active``, windows whose smoothed score is under the on threshold, and while an open
        incident is active, windows at or above the off threshold (the incident's curve, peak
        and mean then miss them). A candidate needs every window."""
        if self._active and not self._is_open:
            raise RuntimeError("a candidate needs every window fed")
        self._history.clear()
        self._history.extend(float(p) for p in probs)

    def set_config(self, config: DecisionConfig) -> None:
        """Use new thresholds from the next window on (open incidents continue)."""
        if config.smoothing_windows != self.config.smoothing_windows:
            self._history = deque(self._history, maxlen=int(config.smoothing_windows))
        self.config = config

    def update(self, t_end_s: float, prob: float) -> list[DecisionEvent]:
        cfg = self.config
        self.windows += 1
        self._history.append(float(prob))
        score = _mean(self._history)
        events: list[DecisionEvent] = []

        if self._incident is None:
            if score < cfg.on_threshold:
                return events
            self._start_candidate(t_end_s, score)
        elif self._active:
            self._add_point(t_end_s, score)
            if score >= cfg.off_threshold:
                self._mark_active(t_end_s, score)
            elif not self._is_open:
                self._drop_candidate()
                return events
            else:
                self._active = False  # quiet: merge or close decided by the next windows
                return events
        elif t_end_s - self._last_active_s > cfg.merge_gap_s + 1e-9:  # as min_duration_s
            events.append(self._close())
            if score < cfg.on_threshold:
                return events
            self._start_candidate(t_end_s, score)
        else:
            self._add_point(t_end_s, score)
            if score < cfg.on_threshold:
                return events
            self._active = True  # merged: the quiet incident continues
            self._mark_active(t_end_s, score)
            self._last_update_s = t_end_s
            events.append(DecisionEvent(UPDATED, self._snapshot()))
            return events

        if not self._is_open:
            if t_end_s - self._first_active_s >= cfg.min_duration_s - 1e-9:
                if t_end_s < self._cooldown_until:
                    self._waited_cooldown = True
                else:
                    self._is_open = True
                    self.opened += 1
                    self._incident.opened_s = t_end_s
                    self._last_update_s = t_end_s
                    events.append(DecisionEvent(OPENED, self._snapshot()))
        elif self._active and t_end_s - self._last_update_s >= self.update_interval_s - 1e-9:
            self._last_update_s = t_end_s
            events.append(DecisionEvent(UPDATED, self._snapshot()))
        return events

    def finish(self) -> list[DecisionEvent]:
        """End of stream: close an open incident, drop a candidate."""
        if self._incident is None:
            return []
        if self._is_open:
            return [self._close()]
        self._drop_candidate()
        return []

    # ------------------------------------------------------------------ internals

    def _start_candidate(self, t: float, score: float) -> None:
        self._incident = Incident(
            started_s=max(0.0, t - self.window_span_s),
            ended_s=None,
            peak_score=score,
            mean_score=score,
            scores=[(t, score)],
        )
        self._is_open = False
        self._active = True
        self._first_active_s = self._last_active_s = t
        self._sum, self._count = score, 1
        self._lowest = score  # of the active scores: the mean never falls below it
        self._waited_cooldown = False

    def _add_point(self, t: float, score: float) -> None:
        if len(self._incident.scores) < self.max_curve_points:
            self._incident.scores.append((t, score))

    def _mark_active(self, t: float, score: float) -> None:
        self._last_active_s = t
        self._sum += score
        self._count += 1
        self._lowest = min(self._lowest, score)
        incident = self._incident
        incident.peak_score = max(incident.peak_score, score)
        # Within [lowest, peak] like _mean: a running float sum of equal scores can round below.
        incident.mean_score = min(max(self._sum / self._count, self._lowest), incident.peak_score)

    def _drop_candidate(self) -> None:
        if self._waited_cooldown:
            self.suppressed += 1
        else:
            self.discarded += 1
        self._incident = None
        self._active = False

    def _close(self) -> DecisionEvent:
        incident = self._incident
        incident.ended_s = self._last_active_s
        self._cooldown_until = self._last_active_s + self.config.cooldown_s
        self._incident = None
        self._is_open = self._active = False
        return DecisionEvent(CLOSED, replace(incident, scores=list(incident.scores)))

    def _snapshot(self) -> Incident:
        return replace(self._incident, scores=list(self._incident.scores))
