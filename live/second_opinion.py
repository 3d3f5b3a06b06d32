"""YAMNet's second opinion on the windows a live stream's network flags.

A model with a ``second_stage`` (``detection.second_stage``) decides on the fused score of each
window. The network's scores come back from the scorer (in process, or the scoring worker); the
windows it scores at or above the gate are rescored here, in the stream's own process, from the
audio its ring buffer still holds (the ring keeps seconds; scores return within a fraction of
one). YAMNet runs in one thread per process, so the event loop keeps serving sockets; it sees
only the windows the network flags, the requests of all the process's streams in batches
(``BatchedYamnet``).

``shared_second_opinion`` keeps one loaded YAMNet per process and second-stage configuration,
beside the scorer's model cache.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import torch

from detection.second_stage import SecondStage, SecondStageConfig, cascade, gate_for
from detection.yamnet import scream_scores
from detection.yamnet_weights import load_yamnet


@dataclass(frozen=True)
class PatchJob:
    """One stream's request: YAMNet's score of the windows at ``starts_s`` in ``audio``."""

    stage: SecondStage
    audio: np.ndarray
    rate: int
    starts_s: np.ndarray
    span_s: float
    offset_s: float


class BatchedYamnet:
    """The process's YAMNet thread, fed in batches across streams.

    One stream's request holds a window or three; YAMNet costs about 5 ms a patch one at a time
    and 2.6 ms in batches of 16. Requests that arrive while a batch runs wait for the next one,
    which takes all of them: an idle process answers at once, a loaded one in bigger batches."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self._waiting: list[tuple[PatchJob, asyncio.Future]] = []
        self._draining = False
        self.batches = 0
        self.patches = 0

    async def scores(self, job: PatchJob) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((job, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                jobs = [job for job, _ in batch]
                try:
                    results = await loop.run_in_executor(self.executor, score_jobs, jobs)
                except Exception as exc:  # every waiting stream hears of it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                self.patches += sum(len(job.starts_s) for job in jobs)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False


def score_jobs(jobs: list[PatchJob]) -> list[np.ndarray]:
    """YAMNet's scores of several streams' windows, their patches through the network together
    (the patches of one model; ``scream_scores`` cuts them into chunks of 16)."""
    results: list[np.ndarray] = [np.zeros(0, np.float32)] * len(jobs)
    by_model: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        by_model.setdefault(id(job.stage.model), []).append(i)
    for members in by_model.values():
        cut = [
            jobs[i].stage.patches(
                jobs[i].audio, jobs[i].rate, jobs[i].starts_s, jobs[i].span_s, jobs[i].offset_s
            )
            for i in members
        ]
        scores = scream_scores(jobs[members[0]].stage.model, np.concatenate(cut))
        parts = np.split(scores, np.cumsum([len(c) for c in cut])[:-1])
        for i, part in zip(members, parts, strict=True):
            results[i] = part
    return results


# While the stream's incident is open, a flagged window takes the YAMNet score of the last window
# heard if that one ended less than this long before it: the incident is already an alert, and
# its windows decide only when it closes. Out of source (every held-out file of the shipped
# model's choice, through the live decision; ``python -m bench.open_hold``) it changes no
# alert and spares YAMNet a quarter of its windows; during a scream, most of them.
HOLD_OPEN_S = 1.0


class SecondOpinion:
    def __init__(
        self, stage: SecondStage, yamnet: BatchedYamnet, hold_open_s: float = HOLD_OPEN_S
    ) -> None:
        self.stage = stage
        self.yamnet = yamnet
        self.hold_open_s = float(hold_open_s)
        self.rescored = 0  # windows YAMNet heard
        self.held = 0  # flagged windows that took a held score (an incident open)
        self._last: tuple[float, float] | None = None  # (end s, score) of the last heard
        # Appended to the network's version on alerts: the scores are the fusion's.
        self.tag = f"yamnet{stage.config.weight:g}"

    async def rescore(
        self, stream, cols: list[int], probs: np.ndarray, incident_open: bool = False
    ) -> np.ndarray:
        """The cascade's scores of a stream's windows starting at ``cols``; with
        ``incident_open``, windows within ``hold_open_s`` of the last heard one take its
        score (``HOLD_OPEN_S``)."""
        probs = np.asarray(probs, dtype=np.float32)
        flagged = self.stage.flagged(probs)
        second = np.zeros_like(probs)
        if not flagged.any():
            return cascade(probs, second, flagged, self.stage.config.weight)
        index = np.flatnonzero(flagged)  # only these windows' times are needed
        times = np.array([stream.window_times(cols[i]) for i in index], dtype=np.float64)
        hear = np.ones(index.size, dtype=bool)
        if incident_open and self._last is not None and self.hold_open_s > 0:
            last_end, last_score = self._last
            hear = times[:, 1] - last_end >= self.hold_open_s - 1e-9
            second[index[~hear]] = last_score
            self.held += int((~hear).sum())
        if hear.any():
            ring = stream.ring
            starts = times[hear, 0]
            span = stream.cfg.window_span_s()
            begin = max(ring.start, int(math.floor(starts.min() * ring.rate)))
            stop = int(math.ceil((starts.max() + span) * ring.rate))
            job = PatchJob(
                self.stage, ring.samples(begin, stop), ring.rate, starts, span, begin / ring.rate
            )
            heard = await self.yamnet.scores(job)
            second[index[hear]] = heard
            self.rescored += int(hear.sum())
            self._last = (float(times[hear][-1, 1]), float(heard[-1]))
        return cascade(probs, second, flagged, self.stage.config.weight)


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="yamnet")


@cache
def _batched() -> BatchedYamnet:
    return BatchedYamnet(_executor())


@cache
def _yamnet():
    # One thread of torch ops: the process's other core-worth of work is its event loop (and,
    # in embedded mode, the scorer, which runs on one thread as well).
    torch.set_num_threads(1)
    return load_yamnet()


def prepare_second_opinion() -> None:
    """Load the process's YAMNet now (a thread: a stream switching to a version with a second
    stage then finds it loaded)."""
    _yamnet()


def shared_second_opinion(
    config: dict | None, on_threshold: float | None = None, model_on_threshold: float | None = None
) -> SecondOpinion | None:
    """A ``SecondOpinion`` for a model's ``second_stage`` block (None without one), on the
    process's YAMNet and thread. A stream whose site or device is more sensitive than the model's
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
    return SecondOpinion(SecondStage(stage_config, _yamnet()), _batched())
