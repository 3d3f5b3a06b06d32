"""Cross-validation: a network per fold, out-of-fold scores, the operating threshold."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .corpus import Corpus, augment_config
from .dataset import (
    POSITIVE,
)
from .decision_choice import (
    ChosenDecision,
    choose_decision,
    clip_threshold,
    decision_defaults,
    out_of_fold_alerts,
)
from .evaluation import (
    Scored,
    best_f1_threshold,
    by_input,
    device_copy_name,
    file_top_scores,
    fold_means,
    summarize,
)
from .progress import tqdm
from .source_validation import (
    source_streams,
    source_table,
)
from .train_loop import network_predict, score_windows, train_network
from .training_plan import Hyper, TrainingError


@dataclass
class CVResult:
    scored: Scored  # out-of-fold scores of every window of every file
    fold_of_file: np.ndarray
    threshold: float
    summary: dict  # at the threshold, all out-of-fold windows
    folds: list[dict]
    means: dict
    seconds: float
    # The figures again for each input: as recorded, and at each of ``--eval-rates``.
    by_input: dict = field(default_factory=dict)
    # The live decision defaults, chosen through the decision logic (``choose_decision``).
    decision: ChosenDecision | None = None
    # Out-of-source validation: figures per held-out source (``source_table``).
    by_source: dict | None = None


def choose_threshold(scored: Scored, on: str) -> float:
    """The threshold maximising out-of-fold F1 of files (any window over it) or of windows."""
    if on == "files":
        top = file_top_scores(scored.file_index, scored.scores, scored.file_truth.size)
        seen = np.isfinite(top)
        return best_f1_threshold(scored.file_truth[seen], top[seen])[0]
    if on == "windows":
        lab = scored.labelled
        return best_f1_threshold(scored.targets[lab] == POSITIVE, scored.scores[lab])[0]
    raise TrainingError(f"unknown threshold_on {on!r} (files or windows)")


def held_out_streams(corpus: Corpus, net, valid: np.ndarray) -> dict[str, np.ndarray]:
    """Window probabilities of one long stream per held-out source (``source_streams``)."""
    return source_streams(
        corpus.recordings,
        valid,
        corpus.store.audio,
        corpus.cfg,
        corpus.cfg.stride_columns(corpus.plan.stride_s),
        network_predict(net, corpus.cfg),
        corpus.plan.progress,
    )


def cross_validate(
    corpus: Corpus,
    hyper: Hyper,
    folds: np.ndarray,
    label: str = "cv",
    decide: bool = True,
    by_source: bool = False,
) -> CVResult:
    """Train K networks, each scoring its held-out fold; threshold and figures out of fold.

    ``decide``: also choose the live decision (``choose_decision``); a search trial, scored by
    its mean window F1 only, skips it. ``by_source``: the folds hold out whole sources; the
    figures are also given per held-out source (``source_table``)."""
    began = time.monotonic()
    k = int(folds.max()) + 1
    n_files = len(corpus.recordings)
    scores, targets, subs, file_index = [], [], [], []
    streams: dict[str, np.ndarray] = {}
    bar = tqdm(range(k), desc=label, unit="fold", leave=False, disable=not corpus.plan.progress)
    for fold in bar:
        train = np.flatnonzero(folds != fold)
        valid = np.flatnonzero(folds == fold)
        data = corpus.training_set(train, f"{label} fold {fold}")
        net = train_network(
            data,
            hyper,
            corpus.cfg,
            seed=corpus.plan.seed * 1000 + fold,
            progress=corpus.plan.progress,
            label=f"{label} fold {fold}",
            augment=augment_config(corpus.plan),
        )
        held = corpus.scoring_set(valid)
        scores.append(score_windows(net, held, corpus.cfg))
        if by_source:
            streams.update(held_out_streams(corpus, net, valid))
        targets.append(held.target)
        subs.append(held.sublabel)
        # Copy r of a held-out file is file (its index + r * n_files) of the scored set.
        copy, within = np.divmod(held.file, valid.size)
        file_index.append(valid[within] + copy * n_files)
    rates = corpus.plan.eval_rates
    scored = Scored(
        scores=np.concatenate(scores),
        targets=np.concatenate(targets),
        sublabels=np.concatenate(subs),
        file_index=np.concatenate(file_index),
        file_truth=np.tile([r.has_scream for r in corpus.recordings], 1 + len(rates)),
        file_names=[r.rel for r in corpus.recordings]
        + [device_copy_name(r.rel, rate) for rate in rates for r in corpus.recordings],
    )
    lab = scored.labelled
    if not np.any(scored.targets[lab] == POSITIVE):
        raise TrainingError("no labelled scream window in any validation fold")
    threshold = clip_threshold(choose_threshold(scored, corpus.plan.threshold_on))
    summary = summarize(scored, threshold)
    chosen = (
        choose_decision(scored, threshold, corpus.cfg, corpus.plan.stride_s) if decide else None
    )
    decision = chosen.decision if chosen else decision_defaults(threshold)
    summary["alerts"] = out_of_fold_alerts(
        scored, threshold, corpus.cfg, corpus.plan.stride_s, decision
    )
    fold_rows = []
    for fold in range(k):
        files = np.flatnonzero(folds == fold)
        copies = np.concatenate([files + r * n_files for r in range(1 + len(rates))])
        fold_rows.append(
            {
                "fold": fold,
                "n_files": int(files.size),
                "n_groups": len({corpus.recordings[i].group for i in files}),
                "n_scream_files": int(sum(corpus.recordings[i].has_scream for i in files)),
                "summary": summarize(scored.subset(copies), threshold),
            }
        )
    assert n_files * (1 + len(rates)) == scored.file_truth.size
    return CVResult(
        scored=scored,
        fold_of_file=folds,
        threshold=threshold,
        summary=summary,
        folds=fold_rows,
        means=fold_means(fold_rows),
        seconds=time.monotonic() - began,
        by_input=by_input(scored, threshold, np.tile(folds, 1 + len(rates))),
        decision=chosen,
        by_source=source_table(
            scored,
            corpus.recordings,
            folds,
            threshold,
            streams,
            lambda s: out_of_fold_alerts(s, threshold, corpus.cfg, corpus.plan.stride_s, decision),
        )
        if by_source
        else None,
    )


# --------------------------------------------------------------------------- search
