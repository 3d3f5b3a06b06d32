"""The live Scorer: windows from many streams, batched, one network forward per batch.

``await scorer.score(windows)`` queues one stream's new windows ``(n, n_mels, W)`` (raw log-mel,
as ``WindowCutter`` cuts them) and returns ``(probabilities, model_version)``. A batcher task
collects requests from every stream until ``max_batch`` windows are queued or the oldest request
has waited ``max_wait_s``, then runs one ``LoadedModel.predict`` (which applies
``normalize_windows``) in a worker thread, so the event loop keeps serving sockets meanwhile.
While a forward runs, new requests queue up: under load batches grow by themselves.

The active model is ``model_dir`` (``settings.EYESCREAM_MODEL_DIR``). Every ``check_interval_s``
the batcher compares the artifact files' signatures; when they changed (or on ``reload()``) the
new model is loaded in the scoring thread and swapped in between two batches: no request is
dropped. Requests carry the feature fingerprint their windows were computed with; the previous
model stays loaded for streams that started before a change of feature parameters.

Process-wide instances (``shared_scorer``) are the scorer's model cache, the one piece of global
state allowed in the project.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifacts import CONFIG_FILE, WEIGHTS_FILE, LoadedModel, load_model, read_model_config
from .decision import DecisionConfig
from .features import FeatureConfig

log = logging.getLogger(__name__)

MAX_BATCH = 256
MAX_WAIT_S = 0.010
CHECK_INTERVAL_S = 2.0
KEEP_MODELS = 2  # the active model and the one before it (streams with older features)


class FeatureMismatch(Exception):
    """Windows were computed with feature parameters no loaded model was trained with."""


def features_key(features: FeatureConfig) -> str:
    """A short fingerprint of every feature parameter."""
    text = json.dumps(features.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def decision_defaults(config: dict) -> DecisionConfig:
    """The decision defaults of a model artifact's ``config.json``."""
    return DecisionConfig.from_model(config.get("decision"), config.get("threshold"))


def artifact_signature(model_dir: Path) -> tuple | None:
    """Cheap change detector: inode, size and mtime of config.json and weights.pt."""
    try:
        stats = [os.stat(model_dir / name) for name in (CONFIG_FILE, WEIGHTS_FILE)]
    except OSError:
        return None
    return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)


@dataclass
class _Request:
    windows: np.ndarray
    key: str | None
    future: asyncio.Future
    queued_at: float


@dataclass
class ScorerStats:
    requests: int = 0
    windows: int = 0
    batches: int = 0
    largest_batch: int = 0
    forward_s: float = 0.0
    reloads: int = 0
    reload_failures: int = 0

    def as_dict(self) -> dict:
        mean = self.windows / self.batches if self.batches else 0.0
        return {**self.__dict__, "mean_batch": round(mean, 2)}


class Scorer:
    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        max_batch: int = MAX_BATCH,
        max_wait_s: float = MAX_WAIT_S,
        check_interval_s: float = CHECK_INTERVAL_S,
        torch_threads: int | None = 1,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.check_interval_s = check_interval_s
        self.torch_threads = torch_threads
        self.stats = ScorerStats()
        # Called in the scoring thread after each forward: (windows, seconds). For metrics.
        self.on_forward: Callable[[int, float], None] | None = None
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()  # last = active
        self._signature: tuple | None = None
        self._next_check = 0.0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="scorer")
        self._load_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._pending: deque[_Request] = deque()
        self._queued = 0
        self._arrived: asyncio.Event | None = None
        self._full: asyncio.Event | None = None

    # ------------------------------------------------------------------ the model

    @property
    def model(self) -> LoadedModel:
        """The active model (loaded on first use)."""
        if not self._models:
            self._load()
        return next(reversed(self._models.values()))

    @property
    def loaded(self) -> bool:
        """Is a model loaded (``ensure_loaded`` has nothing left to do)?"""
        return bool(self._models)

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def features(self) -> FeatureConfig:
        return self.model.features

    def decision_defaults(self) -> DecisionConfig:
        return decision_defaults(self.model.config)

    def _load(self) -> bool:
        """Load the artifact if it changed since the last load; True when a new one is active."""
        with self._load_lock:
            signature = artifact_signature(self.model_dir)
            if self._models and signature == self._signature:
                return False
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            model = load_model(self.model_dir)
            key = features_key(model.features)
            self._models.pop(key, None)
            self._models[key] = model
            while len(self._models) > KEEP_MODELS:
                self._models.popitem(last=False)
            changed = self._signature is not None
            self._signature = signature
            if changed:
                self.stats.reloads += 1
                log.info("scorer: model %s from %s is active", model.version, self.model_dir)
            return changed

    def _maybe_reload(self, force: bool = False) -> bool:
        """In the scoring thread: reload when the files changed; keep the old model on errors."""
        if not force and artifact_signature(self.model_dir) == self._signature:
            return False
        try:
            if force:
                self._signature = None if not self._models else ("forced",)
            return self._load()
        except Exception as exc:  # a half-written or broken artifact: keep serving the old one
            self.stats.reload_failures += 1
            log.warning(
                "scorer: cannot load %s, keeping %s: %s",
                self.model_dir,
                self._active_version(),
                exc,
            )
            return False

    def _active_version(self) -> str:
        return next(reversed(self._models.values())).version if self._models else "none"

    async def reload(self) -> bool:
        """Reload the artifact now (between batches); True when a new model became active."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._maybe_reload, True)

    async def ensure_loaded(self) -> LoadedModel:
        """Load the model in the scoring thread (a first load takes a moment)."""
        if not self._models:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        return self.model

    # ------------------------------------------------------------------ scoring

    async def score(self, windows: np.ndarray, key: str | None = None) -> tuple[np.ndarray, str]:
        """Probabilities for ``windows`` ``(n, n_mels, W)`` and the version of the model used.

        ``key`` is the ``features_key`` the windows were computed with (None: the active
        model's); ``FeatureMismatch`` when no loaded model has those features.
        """
        return await self.submit(windows, key)

    def submit(self, windows: np.ndarray, key: str | None = None) -> asyncio.Future:
        """Queue ``windows`` for the next batch; the future gets ``score``'s result.

        Never waits (no task per request: live streams submit thousands a second).
        """
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3:
            raise ValueError(f"windows must be (n, n_mels, frames), got shape {windows.shape}")
        self._ensure_running()
        future = self._loop.create_future()
        if windows.shape[0] == 0:
            future.set_result((np.zeros(0, dtype=np.float32), self._active_version()))
            return future
        self._pending.append(_Request(windows, key, future, time.monotonic()))
        self._queued += windows.shape[0]
        self.stats.requests += 1
        self._arrived.set()
        if self._queued >= self.max_batch:
            self._full.set()
        return future

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        if self._loop is not loop:  # a new event loop (tests, a restarted server)
            self._pending.clear()
            self._queued = 0
        self._loop = loop
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._task = loop.create_task(self._run(), name="scorer-batcher")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            wait = self._pending[0].queued_at + self.max_wait_s - time.monotonic()
            if self._queued < self.max_batch and wait > 0:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), wait)
                except TimeoutError:
                    pass
            batch = self._take_batch()
            check = time.monotonic() >= self._next_check
            if check:
                self._next_check = time.monotonic() + self.check_interval_s
            try:
                results = await loop.run_in_executor(self._executor, self._forward, batch, check)
            except Exception as exc:  # never let the batcher die: fail this batch only
                log.exception("scorer: batch of %d requests failed", len(batch))
                results = [exc] * len(batch)
            for request, result in zip(batch, results, strict=True):
                if request.future.done():  # the caller went away
                    continue
                if isinstance(result, BaseException):
                    request.future.set_exception(result)
                else:
                    request.future.set_result(result)

    def _take_batch(self) -> list[_Request]:
        batch = [self._pending.popleft()]
        count = batch[0].windows.shape[0]
        while self._pending and count + self._pending[0].windows.shape[0] <= self.max_batch:
            request = self._pending.popleft()
            batch.append(request)
            count += request.windows.shape[0]
        self._queued -= count
        return batch

    def _forward(self, batch: list[_Request], check: bool) -> list:
        """In the scoring thread: one ``predict`` per feature fingerprint present in the batch."""
        if not self._models:
            self._load()
        elif check:
            self._maybe_reload()
        active_key = next(reversed(self._models))
        groups: dict[str, list[int]] = {}
        results: list = [None] * len(batch)
        for i, request in enumerate(batch):
            key = request.key or active_key
            if key not in self._models:
                results[i] = FeatureMismatch(
                    f"no loaded model uses features {key} (active model"
                    f" {self._models[active_key].version} uses {active_key})"
                )
                continue
            groups.setdefault(key, []).append(i)
        started = time.perf_counter()
        for key, members in groups.items():
            model = self._models[key]
            windows = np.concatenate([batch[i].windows for i in members])
            forward_started = time.perf_counter()
            try:
                probs = model.predict(windows, batch_size=max(self.max_batch, len(windows)))
            except Exception as exc:
                for i in members:
                    results[i] = exc
                continue
            offset = 0
            for i in members:
                n = batch[i].windows.shape[0]
                results[i] = (probs[offset : offset + n], model.version)
                offset += n
            self.stats.windows += len(windows)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(windows))
            if self.on_forward is not None:
                self.on_forward(len(windows), time.perf_counter() - forward_started)
        self.stats.forward_s += time.perf_counter() - started
        return results

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        for request in self._pending:
            if not request.future.done():
                request.future.set_exception(RuntimeError("scorer closed"))
        self._pending.clear()
        self._queued = 0
        self._executor.shutdown(wait=False)


_SHARED: dict[Path, Scorer] = {}
_BY_ARGUMENT: dict[str, Scorer] = {}  # the same, by the path as given (no resolve per call)


def shared_scorer(model_dir: str | os.PathLike) -> Scorer:
    """The process's Scorer for ``model_dir``."""
    known = _BY_ARGUMENT.get(os.fspath(model_dir))
    if known is not None:
        return known
    path = Path(model_dir).resolve()
    scorer = _SHARED.get(path)
    if scorer is None:
        scorer = _SHARED[path] = Scorer(path)
    _BY_ARGUMENT[os.fspath(model_dir)] = scorer
    return scorer


def model_defaults(model_dir: str | os.PathLike) -> tuple[dict, DecisionConfig]:
    """``(config.json, decision defaults)`` of an artifact without loading its network."""
    config = read_model_config(model_dir)
    return config, decision_defaults(config)
