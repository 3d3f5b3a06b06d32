"""YAMNet's second opinion on the windows a live stream's network flags.

A model with a ``second_stage`` (``detection.second_stage``) decides on the fused score of each
window. The network's scores come back from the scorer (in process, or the scoring worker); the
windows it scores at or above the gate are rescored from the audio the stream's ring buffer
still holds (the ring keeps seconds; scores return within a fraction of one). YAMNet sees only
the windows the network flags, the requests of all the process's streams in batches
(``live.yamnet_batches``): in embedded mode in one thread of the process, so the event loop keeps
serving sockets; in scaled mode in the scoring workers (``live.yamnet_remote``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from detection.fusion import HOLD_OPEN_S, SecondStageConfig, cascade, gate_for, held
from detection.second_stage import SecondStage

from . import metrics
from .scoring_batcher import worth_logging
from .yamnet_batches import BatchedYamnet, PatchJob, local_batches, process_yamnet

log = logging.getLogger(__name__)


class SecondOpinion:
    def __init__(
        self, stage: SecondStage, yamnet: BatchedYamnet, hold_open_s: float = HOLD_OPEN_S
    ) -> None:
        self.stage = stage
        self.yamnet = yamnet
        self.hold_open_s = float(hold_open_s)
        self.rescored = 0  # windows YAMNet heard
        self.held = 0  # flagged windows that took a held score (an incident open)
        self.unheard = 0  # flagged windows whose audio had left the ring: the network decides
        self._last: tuple[float, float] | None = None  # (end s, score) of the last heard
        # Appended to the network's version on alerts: the scores are the fusion's.
        self.tag = f"yamnet{stage.config.weight:g}"

    async def rescore(
        self, stream, cols: list[int], probs: np.ndarray, incident_open: bool = False
    ) -> np.ndarray:
        """The cascade's scores of a stream's windows starting at ``cols``; with
        ``incident_open``, windows within ``hold_open_s`` of the last heard one take its
        score (``HOLD_OPEN_S``). A flagged window whose audio the ring no longer holds (its
        scores came back seconds late: an overloaded host) takes the network's own score, as a
        window of the network alone would: YAMNet would hear silence, and the fusion of that
        with the network's score misses screams."""
        probs = np.asarray(probs, dtype=np.float32)
        flagged = self.stage.flagged(probs)
        second = np.zeros_like(probs)
        if not flagged.any():
            return cascade(probs, second, flagged, self.stage.config.weight)
        index = np.flatnonzero(flagged)  # only these windows' times are needed
        times = np.array([stream.window_times(cols[i]) for i in index], dtype=np.float64)
        last_end, last_score = self._last if self._last is not None else (None, 0.0)
        hear = ~held(times[:, 1], incident_open, last_end, self.hold_open_s)
        second[index[~hear]] = last_score
        self.held += int((~hear).sum())
        ring = stream.ring
        lost = hear & (times[:, 0] * ring.rate < ring.start - 1e-6)
        if lost.any():  # scores came back later than the ring holds audio: an overloaded host
            second[index[lost]] = probs[index[lost]]  # fused = the network's own score
            hear &= ~lost
            self.unheard += int(lost.sum())
            metrics.YAMNET_UNHEARD.inc(int(lost.sum()))
            if worth_logging(self.unheard):
                log.warning(
                    "second stage: %d flagged windows no longer in the ring; the network's score "
                    "decides them (scores are more than %.0f s behind)",
                    self.unheard,
                    ring.capacity / ring.rate,
                )
        if hear.any():
            starts = times[hear, 0]
            span = stream.cfg.window_span_s()
            begin = max(ring.start, int(math.floor(starts.min() * ring.rate)))
            stop = int(math.ceil((starts.max() + span) * ring.rate))
            job = PatchJob(
                self.stage.model,
                ring.samples(begin, stop),
                ring.rate,
                starts,
                span,
                begin / ring.rate,
            )
            heard = await self.yamnet.scores(job)
            second[index[hear]] = heard
            self.rescored += int(hear.sum())
            self._last = (float(times[hear][-1, 1]), float(heard[-1]))
        return cascade(probs, second, flagged, self.stage.config.weight)


def prepare_second_opinion() -> None:
    """Load the process's YAMNet now (a thread: a stream switching to a version with a second
    stage then finds it loaded; in scaled mode it hears windows when no worker answers)."""
    process_yamnet()


def shared_second_opinion(
    config: dict | None,
    on_threshold: float | None = None,
    model_on_threshold: float | None = None,
    batches: BatchedYamnet | None = None,
) -> SecondOpinion | None:
    """A ``SecondOpinion`` for a model's ``second_stage`` block (None without one), heard in
    ``batches`` (default: the process's own YAMNet thread; in scaled mode the scoring workers',
    ``live.yamnet_remote``). A stream whose site or device is more sensitive than the model's
    defaults (``on_threshold`` below the model's ``model_on_threshold``) opens incidents lower
    down: its gate is lowered by as much as the exact gate (``gate_for``) moves between the two,
    so YAMNet hears the windows that could now open one, with the chosen margin kept."""
    if not config:
        return None
    stage_config = SecondStageConfig.from_dict(config)
    if on_threshold is not None:
        weight, gate = stage_config.weight, stage_config.gate
        if model_on_threshold is None:  # no reference: no window that could open one unheard
            gate = min(gate, gate_for(on_threshold, weight))
        else:
            gate -= max(0.0, gate_for(model_on_threshold, weight) - gate_for(on_threshold, weight))
        stage_config = replace(stage_config, gate=max(0.0, gate))
    return SecondOpinion(
        SecondStage(stage_config, process_yamnet()),
        local_batches() if batches is None else batches,
    )
