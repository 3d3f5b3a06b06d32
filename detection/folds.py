"""Validation folds: grouped K-fold by recording group, or whole sources held out (``loso``)."""

from __future__ import annotations

import numpy as np

from .dataset import (
    Recording,
    audio_seconds,
)
from .source_validation import (
    SourceSplitError,
    source_folds,
)
from .training_plan import Plan, TrainingError


def grouped_folds(recordings: list[Recording], k: int, seed: int = 0) -> np.ndarray:
    """Fold number of every recording: no group in two folds, scream files spread evenly.

    Greedy: groups in decreasing size (scream files first), each into the fold that so far
    has the fewest files of that group's kind (scream or its negative sub-label), then the
    fewest files overall. Ties between equal groups are broken by ``seed``.
    """
    if k < 2:
        raise TrainingError(f"need at least 2 folds, got {k}")
    groups: dict[str, list[int]] = {}
    for index, rec in enumerate(recordings):
        groups.setdefault(rec.group, []).append(index)
    if len(groups) < k:
        raise TrainingError(
            f"{len(groups)} recording group(s) cannot be split into {k} folds; use fewer folds"
        )
    rng = np.random.default_rng(seed)
    names = list(groups)
    jitter = dict(zip(names, rng.permutation(len(names)), strict=True))

    def kind(name: str) -> str:
        kinds = [recordings[i].kind for i in groups[name]]
        # The commonest kind; a tie goes to the first in sorted order (not to a set's order,
        # which changes with each process's string hashing and moved groups between folds).
        return "1" if "1" in kinds else max(sorted(set(kinds)), key=kinds.count)

    def size(name: str) -> int:
        return len(groups[name])

    order = sorted(names, key=lambda g: (kind(g) != "1", -size(g), jitter[g]))
    per_kind = {}
    totals = np.zeros(k, dtype=np.int64)
    assignment = np.full(len(recordings), -1, dtype=np.int64)
    for name in order:
        counts = per_kind.setdefault(kind(name), np.zeros(k, dtype=np.int64))
        fold = min(range(k), key=lambda f: (counts[f], totals[f], f))
        counts[fold] += size(name)
        totals[fold] += size(name)
        assignment[groups[name]] = fold
    return assignment


VALIDATIONS = ("kfold", "loso")


def validation_folds(recordings: list[Recording], plan: Plan) -> np.ndarray:
    """The fold of every recording for ``plan.validation``."""
    if plan.validation == "kfold":
        return grouped_folds(recordings, plan.folds, plan.seed)
    if plan.validation == "loso":
        try:
            return source_folds(
                [r.source for r in recordings],
                [audio_seconds(r) for r in recordings],
                plan.source_folds,
            )
        except SourceSplitError as exc:
            raise TrainingError(str(exc)) from exc
    raise TrainingError(f"unknown validation {plan.validation!r} ({' or '.join(VALIDATIONS)})")


# --------------------------------------------------------------------------- window sets
