"""YAMNet's second opinion on the windows a live stream's network flags.

A model with a ``second_stage`` (``detection.second_stage``) decides on the fused score of each
window. The network's scores come back from the scorer (in process, or the scoring worker); the
windows it scores at or above the gate are rescored here, in the stream's own process, from the
audio its ring buffer still holds (the ring keeps seconds; scores return within a fraction of
one). YAMNet runs in one thread per process (``SecondOpinion.executor``), so the event loop keeps
serving sockets; it sees only the few windows the network flags.

``shared_second_opinion`` keeps one loaded YAMNet per process and second-stage configuration,
beside the scorer's model cache.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cache

import numpy as np

from detection.second_stage import SecondStage, SecondStageConfig, cascade, gate_for
from detection.yamnet_weights import load_yamnet


class SecondOpinion:
    def __init__(self, stage: SecondStage, executor: ThreadPoolExecutor) -> None:
        self.stage = stage
        self.executor = executor
        self.rescored = 0  # windows YAMNet heard
        # Appended to the network's version on alerts: the scores are the fusion's.
        self.tag = f"yamnet{stage.config.weight:g}"

    async def rescore(self, stream, cols: list[int], probs: np.ndarray) -> np.ndarray:
        """The cascade's scores of a stream's windows starting at ``cols``."""
        probs = np.asarray(probs, dtype=np.float32)
        flagged = self.stage.flagged(probs)
        second = np.zeros_like(probs)
        if flagged.any():
            ring = stream.ring
            starts = np.array(
                [stream.window_times(c)[0] for c, f in zip(cols, flagged, strict=True) if f]
            )
            span = stream.cfg.window_span_s()
            begin = max(ring.start, int(math.floor(starts.min() * ring.rate)))
            stop = int(math.ceil((starts.max() + span) * ring.rate))
            audio = ring.samples(begin, stop)
            second[flagged] = await asyncio.get_running_loop().run_in_executor(
                self.executor,
                self.stage.scream_scores,
                audio,
                ring.rate,
                starts,
                span,
                begin / ring.rate,
            )
            self.rescored += int(flagged.sum())
        return cascade(probs, second, flagged, self.stage.config.weight)


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="yamnet")


@cache
def _yamnet():
    return load_yamnet()


def prepare_second_opinion() -> None:
    """Load the process's YAMNet now (a thread: a stream switching to a version with a second
    stage then finds it loaded)."""
    _yamnet()


def shared_second_opinion(
    config: dict | None, on_threshold: float | None = None
) -> SecondOpinion | None:
    """A ``SecondOpinion`` for a model's ``second_stage`` block (None without one), on the
    process's YAMNet and thread. A stream whose site or device is more sensitive than the model's
    defaults opens incidents below the model's on threshold: its gate is lowered to match
    (``gate_for``), so that no window that could open one goes unheard by YAMNet."""
    if not config:
        return None
    stage_config = SecondStageConfig.from_dict(config)
    if on_threshold is not None:
        gate = min(stage_config.gate, gate_for(on_threshold, stage_config.weight))
        stage_config = replace(stage_config, gate=gate)
    return SecondOpinion(SecondStage(stage_config, _yamnet()), _executor())
