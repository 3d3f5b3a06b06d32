"""The live decision's defaults, chosen on out-of-fold alert figures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluation import Scored
from .features import FeatureConfig


def out_of_fold_alerts(
    scored: Scored, threshold: float, cfg: FeatureConfig, stride_s: float, decision: dict
):
    """False alerts per hour of held-out non-scream audio at the model's decision defaults
    (``alert_figures.alert_figures``): the out-of-fold counterpart of ``bench.false_alerts``."""
    from .alert_figures import alert_figures
    from .decision import DecisionConfig

    stride = cfg.column_start_s(cfg.stride_columns(stride_s))
    chosen = DecisionConfig.from_model(decision, threshold)
    return alert_figures(scored, chosen, stride, cfg.window_span_s())


# The decision shapes tried out of fold: (smoothing windows, minimum duration in seconds).
# On a tie the later (more smoothing, longer) shape wins: fewer spikes reach operators.
DECISION_SHAPES = ((1, 0.0), (2, 0.0), (3, 0.0), (3, 0.1), (3, 0.3))
OFF_RATIO = 0.7  # a live incident stays active down to this share of its on threshold


@dataclass
class ChosenDecision:
    decision: dict  # the model's ``config["decision"]``
    sweep: list[dict]  # alert figures at each on threshold, for the chosen shape
    shapes: list[dict]  # each shape's best point


def choose_decision(
    scored: Scored, threshold: float, cfg: FeatureConfig, stride_s: float
) -> ChosenDecision:
    """The live decision defaults, chosen out of fold through the decision logic itself.

    For each shape of ``DECISION_SHAPES`` the on threshold is swept (``alert_sweep``); the
    shape and on threshold with the best F1 over files (a file counts as alerted when an
    incident opens in it) win. ``threshold`` (any single window over it) stays the offline
    ``detect`` threshold: a live stream decides on smoothed windows and a minimum duration,
    so its best point is another. The chosen shape's whole sweep goes to ``metrics.json`` and
    the report, for choosing a sensitivity."""
    from .alert_figures import alert_sweep, best_alert_on_threshold, on_threshold_grid
    from .decision import DecisionConfig

    stride = cfg.column_start_s(cfg.stride_columns(stride_s))
    grid = np.union1d(on_threshold_grid(), [threshold])
    best, shapes = None, []
    for smoothing, min_duration in DECISION_SHAPES:
        shape = decision_defaults(threshold, smoothing=smoothing, min_duration_s=min_duration)
        base = DecisionConfig.from_model(shape, threshold)
        rows = alert_sweep(scored, base, stride, cfg.window_span_s(), grid, off_ratio=OFF_RATIO)
        top = best_alert_on_threshold(rows)
        shapes.append({"smoothing_windows": smoothing, "min_duration_s": min_duration, **top})
        if best is None or top["f1"] >= best[0]["f1"]:
            best = (top, rows, smoothing, min_duration)
    top, rows, smoothing, min_duration = best
    decision = decision_defaults(
        threshold,
        on_threshold=clip_threshold(top["on_threshold"]),
        smoothing=smoothing,
        min_duration_s=min_duration,
    )
    return ChosenDecision(decision=decision, sweep=rows, shapes=shapes)


def decision_defaults(
    threshold: float,
    on_threshold: float | None = None,
    smoothing: int = 3,
    min_duration_s: float = 0.3,
) -> dict:
    """The live decision defaults written into a model's config: opening at ``on_threshold``
    (chosen on alerts out of fold; the window threshold when there is none)."""
    on = threshold if on_threshold is None else on_threshold
    return {
        "on_threshold": on,
        "off_threshold": on * OFF_RATIO,
        "smoothing_windows": smoothing,
        "min_duration_s": min_duration_s,
        "merge_gap_s": 2.0,
        "cooldown_s": 5.0,
    }


def clip_threshold(threshold: float) -> float:
    """Artifacts need a threshold strictly inside (0, 1)."""
    return float(min(max(threshold, 1e-4), 1.0 - 1e-4))
