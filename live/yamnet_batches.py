"""YAMNet in batches across a process's streams.

A stream's ``SecondOpinion`` asks for YAMNet's scores of the windows the network flagged as one
``PatchJob``. ``BatchedYamnet`` takes the requests of all the process's streams that wait while
a batch runs as the next batch: an idle process answers at once, a loaded one in bigger batches.
How a batch is scored is its ``run``:

* ``in_thread``: here, in the process's one YAMNet thread (embedded mode; the scoring worker;
  daphne in scaled mode when no worker answered);
* ``live.yamnet_remote.RemoteYamnet``: by the scoring workers (scaled mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from detection.second_stage import window_patches
from detection.yamnet import YAMNet, scream_scores
from detection.yamnet_weights import load_yamnet

from . import metrics


@dataclass(frozen=True)
class PatchJob:
    """One stream's request: YAMNet's scores of the windows at ``starts_s`` (stream seconds,
    each ``span_s`` long) in ``audio`` at ``rate``, whose first sample is at ``offset_s``."""

    model: YAMNet
    audio: np.ndarray
    rate: int
    starts_s: np.ndarray
    span_s: float
    offset_s: float


Run = Callable[[list[PatchJob]], Awaitable[list[np.ndarray]]]


class BatchedYamnet:
    """The requests of a process's streams, scored a batch at a time by ``run``.

    One stream's request holds a window or three; a patch costs YAMNet about half as much in
    batches of 16 as one at a time. A failed batch fails every request in it; the next one runs.
    With ``parallel`` above 1 (the scoring workers: several processes, on several cores) a
    batch of more than ``chunk`` windows is cut into up to ``parallel`` runs of about the same
    number of windows, run at once."""

    def __init__(self, run: Run, parallel: int = 1, chunk: int = 16) -> None:
        self.run = run
        self.parallel = max(1, int(parallel))
        self.chunk = max(1, int(chunk))
        self._waiting: list[tuple[PatchJob, asyncio.Future]] = []
        self._draining = False
        self.batches = 0
        self.runs = 0
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
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                parts = split_batch(batch, self.parallel, self.chunk)
                await asyncio.gather(*(self._run(part) for part in parts))
                self.batches += 1
        finally:
            self._draining = False

    async def _run(self, part: list[tuple[PatchJob, asyncio.Future]]) -> None:
        try:
            results = await self.run([job for job, _ in part])
        except Exception as exc:  # every waiting stream hears of it
            for _, future in part:
                if not future.done():
                    future.set_exception(exc)
            return
        self.runs += 1
        self.patches += sum(len(job.starts_s) for job, _ in part)
        for (_, future), result in zip(part, results, strict=True):
            if not future.done():
                future.set_result(result)


def split_batch(batch: list, parallel: int, chunk: int) -> list[list]:
    """``batch`` (``(PatchJob, ...)`` items, in order) cut into at most ``parallel`` runs of
    at least ``chunk`` windows each where it has that many, of about equal windows; a job is
    never cut."""
    windows = [len(item[0].starts_s) for item in batch]
    runs = max(1, min(parallel, len(batch), sum(windows) // chunk))
    if runs == 1:
        return [batch]
    target = sum(windows) / runs
    parts: list[list] = [[]]
    done = 0
    for item, count in zip(batch, windows, strict=True):
        if parts[-1] and len(parts) < runs and done >= target * len(parts):
            parts.append([])
        parts[-1].append(item)
        done += count
    return parts


def score_jobs(jobs: list[PatchJob]) -> list[np.ndarray]:
    """YAMNet's scores of several streams' windows, their patches through the network together
    (the patches of one model; ``scream_scores`` cuts them into chunks of 16)."""
    results: list[np.ndarray] = [np.zeros(0, np.float32)] * len(jobs)
    by_model: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        by_model.setdefault(id(job.model), []).append(i)
    for members in by_model.values():
        cut = [
            window_patches(
                jobs[i].audio, jobs[i].rate, jobs[i].starts_s, jobs[i].span_s, jobs[i].offset_s
            )
            for i in members
        ]
        scores = scream_scores(jobs[members[0]].model, np.concatenate(cut))
        parts = np.split(scores, np.cumsum([len(c) for c in cut])[:-1])
        for i, part in zip(members, parts, strict=True):
            results[i] = part
    return results


def in_thread(executor: ThreadPoolExecutor, process: str = "ingest") -> Run:
    """A ``run`` that scores each batch in ``executor`` (counted as heard by ``process``)."""

    async def run(jobs: list[PatchJob]) -> list[np.ndarray]:
        results = await asyncio.get_running_loop().run_in_executor(executor, score_jobs, jobs)
        metrics.YAMNET_PATCHES.labels(process).inc(sum(len(job.starts_s) for job in jobs))
        return results

    return run


@cache
def process_yamnet() -> YAMNet:
    """The process's YAMNet, loaded at the first call (then shared by every stream).

    One thread of torch ops: the process's other core-worth of work is its event loop (and, in
    embedded mode and in the scoring worker, the network's scorer, on one thread as well)."""
    torch.set_num_threads(1)
    return load_yamnet(for_scoring=True)


@cache
def _yamnet_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="yamnet")


@cache
def local_run(process: str = "ingest") -> Run:
    """Batches scored in the process's own YAMNet thread."""
    return in_thread(_yamnet_thread(), process)


@cache
def local_batches(process: str = "ingest") -> BatchedYamnet:
    """The process's streams' requests, scored in its own YAMNet thread."""
    return BatchedYamnet(local_run(process))
