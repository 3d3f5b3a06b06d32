"""Random search over the seed's hyper-parameter ranges, scored by cross-validation."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .corpus import Corpus
from .cross_validation import cross_validate
from .progress import tqdm
from .training_plan import SEARCH_SPACE, Hyper, TrainingError


def sample_hyper(base: Hyper, rng: np.random.Generator) -> Hyper:
    """One random draw from the seed's search ranges (lr log-uniform)."""
    lo, hi = SEARCH_SPACE["lr"]
    return replace(
        base,
        lr=float(math.exp(rng.uniform(math.log(lo), math.log(hi)))),
        dropout=float(rng.uniform(*SEARCH_SPACE["dropout"])),
        beta1=float(rng.uniform(*SEARCH_SPACE["beta1"])),
        eps=1e-8,
        weight_decay=float(rng.uniform(*SEARCH_SPACE["weight_decay"])),
    )


SEARCHED = ("lr", "dropout", "beta1", "eps", "weight_decay")


def random_search(
    corpus: Corpus, base: Hyper, folds: np.ndarray, trials: int, epochs: int | None
) -> tuple[Hyper, list[dict]]:
    """Score ``trials`` random draws by grouped-CV mean F1; the best draw (full epochs)."""
    rng = np.random.default_rng([corpus.plan.seed, 31337])
    rows = []
    best, best_score = base, -1.0
    bar = tqdm(range(trials), desc="search", unit="trial", disable=not corpus.plan.progress)
    for trial in bar:
        hyper = sample_hyper(base, rng)
        trial_hyper = replace(hyper, epochs=epochs or base.epochs)
        try:
            result = cross_validate(
                corpus, trial_hyper, folds, label=f"trial {trial}", decide=False
            )
            score = result.means["f1"]
        except TrainingError as exc:  # a diverging draw scores 0, the search goes on
            score, result = 0.0, None
            bar.write(f"trial {trial}: {exc}")
        rows.append(
            {
                "trial": trial,
                "score": float(score),
                "params": {k: getattr(hyper, k) for k in SEARCHED},
                "epochs": trial_hyper.epochs,
                "threshold": result.threshold if result else None,
            }
        )
        if score > best_score:
            best, best_score = hyper, score
        bar.set_postfix(best=f"{best_score:.3f}")
    return best, rows


# --------------------------------------------------------------------------- the whole run
