"""The training corpus: features of every recording, augmented copies, mixing backgrounds."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np

from .dataset import (
    FeatureStore,
    FileFeatures,
    Recording,
)
from .progress import tqdm
from .train_loop import WindowSet
from .training_plan import Plan

MAX_BACKGROUNDS = 48  # negative files loaded as mixing backgrounds per training set


def augment_config(plan: Plan):
    from .augment import AugmentConfig

    return AugmentConfig.from_dict(plan.augment) if plan.augment else AugmentConfig()


def shift_safe(rec: Recording, duration_s: float) -> bool:
    """Whether shifting a file's audio in time keeps its labels true.

    The augmenter's time shift is circular and does not say by how much, so it is only used
    on files labelled as one whole (one label over >= 99 % of the audio, e.g. a negative
    clip); on files with labelled stretches (scream files) it would move the sound away
    from its label.
    """
    labels = {s.label for s in rec.segments}
    covered = sum(s.duration for s in rec.segments)
    return len(labels) == 1 and covered >= 0.99 * duration_s


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def background_pool(
    recordings: list[Recording], pools: np.ndarray, pool: int, seed: int
) -> list[int]:
    """Indices of the negative files of ``pool`` used as mixing backgrounds (at most
    ``MAX_BACKGROUNDS``, drawn with the seed)."""
    negatives = [i for i, rec in enumerate(recordings) if pools[i] == pool and not rec.has_scream]
    if len(negatives) > MAX_BACKGROUNDS:
        rng = np.random.default_rng([seed, 7919, pool])
        negatives = sorted(rng.choice(negatives, MAX_BACKGROUNDS, replace=False).tolist())
    return negatives


class Corpus:
    """The recordings of a run with their original features and their augmented copies.

    ``pools`` assigns every file to a background pool (its cross-validation fold). A file's
    augmented copies mix in backgrounds from negatives of its own pool only, so a copy never
    carries audio of another fold: when fold v is held out, every training copy comes from
    other folds' audio alone. Copies therefore do not depend on which fold is held out and are
    computed once per file, then reused by every fold and by the final model.
    """

    def __init__(
        self,
        recordings: list[Recording],
        store: FeatureStore,
        plan: Plan,
        pools: np.ndarray | None = None,
    ):
        self.recordings = recordings
        self.store = store
        self.plan = plan
        self.cfg = store.cfg
        self.pools = np.zeros(len(recordings), dtype=np.int64) if pools is None else pools
        self.original = [
            store.features(rec)
            for rec in tqdm(
                recordings, desc="features", unit="file", leave=False, disable=not plan.progress
            )
        ]
        self._copies: dict[tuple[int, int], FileFeatures] = {}

    def _pool_backgrounds(self, pool: int) -> tuple[list[int], str]:
        aug_cfg = augment_config(self.plan)
        negatives = background_pool(self.recordings, self.pools, pool, self.plan.seed)
        ids = [self.recordings[i].rel for i in negatives]
        tag = _digest({"aug": aug_cfg.to_dict(), "seed": self.plan.seed, "bg": ids})
        return negatives, tag

    def augmented(self, files: np.ndarray, label: str) -> list[FileFeatures]:
        """``aug_copies`` augmented copies of each of ``files`` (computed once, then reused)."""
        if self.plan.aug_copies <= 0:
            return []
        from .augment import WaveAugmenter

        aug_cfg = augment_config(self.plan)
        no_shift = replace(aug_cfg, time_shift=False)
        pool_info = {int(p): self._pool_backgrounds(int(p)) for p in np.unique(self.pools[files])}
        loaded: dict[int, list[np.ndarray]] = {}
        items = [(int(i), c) for c in range(self.plan.aug_copies) for i in files]
        todo = [item for item in items if item not in self._copies]
        for i, copy in tqdm(
            todo,
            desc=f"{label}: augment",
            unit="file",
            leave=False,
            disable=not self.plan.progress or not todo,
        ):
            rec = self.recordings[i]
            pool = int(self.pools[i])
            negatives, tag = pool_info[pool]

            def augment(audio, rec=rec, copy=copy, pool=pool, negatives=negatives):
                if pool not in loaded:  # loaded only when something is not cached yet
                    loaded[pool] = [self.store.audio(self.recordings[j]) for j in negatives]
                file_seed = int(self.store.file_hash(rec.path)[:8], 16)
                generator = np.random.default_rng([self.plan.seed, copy, file_seed])
                safe = shift_safe(rec, audio.shape[0] / self.cfg.sample_rate)
                augmenter = WaveAugmenter(aug_cfg if safe else no_shift, loaded[pool], generator)
                return augmenter(audio)

            self._copies[(i, copy)] = self.store.features(
                rec, variant=f"aug-{tag}-c{copy}", augment=augment
            )
        return [self._copies[item] for item in items]

    def training_set(self, train: np.ndarray, label: str) -> WindowSet:
        items = [self.original[i] for i in train] + self.augmented(train, label)
        stride = self.cfg.stride_columns(self.plan.train_stride_s)
        return WindowSet.build(items, self.cfg, stride, labelled_only=True)

    def scoring_set(self, files: np.ndarray) -> WindowSet:
        """Windows of ``files`` and of their copies at each of ``plan.eval_rates``; in
        ``.file``, copy ``r`` (1-based) of file ``k`` of ``files`` is ``k + r * len(files)``."""
        stride = self.cfg.stride_columns(self.plan.stride_s)
        items = [self.original[i] for i in files]
        for rate in self.plan.eval_rates:
            items += [self.store.at_rate(self.recordings[int(i)], rate) for i in files]
        return WindowSet.build(items, self.cfg, stride, labelled_only=False)


# --------------------------------------------------------------------------- cross-validation


def data_counts(corpus: Corpus) -> dict:
    recs = corpus.recordings
    kinds = [r.kind for r in recs]
    return {
        "files": len(recs),
        "groups": len({r.group for r in recs}),
        "sources": len({r.source for r in recs}),
        "files_by_kind": {k: kinds.count(k) for k in sorted(set(kinds))},
        "audio_minutes": round(sum(f.duration_s for f in corpus.original) / 60.0, 2),
    }
