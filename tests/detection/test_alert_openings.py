"""``alert_figures.openings`` skips the windows that cannot change how many incidents open; it
must count exactly what feeding every window to an ``IncidentTracker`` counts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.alert_figures import _files_in_order, openings
from detection.decision import OPENED, DecisionConfig, IncidentTracker
from detection.fusion import SecondStageConfig
from detection.second_stage_choice import fused_scored, run_config, saved_choice

SHIPPED = Path(__file__).resolve().parents[2] / "detection/shipped/default"


def every_window(probs, decision, stride_s, span_s) -> int:
    """The reference: every window fed, in order."""
    tracker = IncidentTracker(decision, window_span_s=span_s)
    return sum(
        event.kind == OPENED
        for i, p in enumerate(probs)
        for event in tracker.update(span_s + i * stride_s, float(p))
    )


# Runs of quiet and loud windows, so that thresholds are crossed, incidents go quiet, merge,
# close and meet cooldowns.
runs = st.lists(
    st.tuples(st.integers(1, 25), st.floats(0.0, 1.0), st.floats(0.0, 0.3)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(
    runs=runs,
    seed=st.integers(0, 2**31 - 1),
    on=st.floats(0.2, 0.98),
    off_ratio=st.floats(0.2, 1.0),
    smoothing=st.integers(1, 5),
    min_duration=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
    merge_gap=st.sampled_from([0.0, 0.3, 1.0, 2.0]),
    cooldown=st.sampled_from([0.0, 0.5, 2.0, 5.0]),
)
def test_openings_count_what_feeding_every_window_counts(
    runs, seed, on, off_ratio, smoothing, min_duration, merge_gap, cooldown
):
    rng = np.random.default_rng(seed)
    probs = np.concatenate(
        [np.clip(level + spread * rng.standard_normal(n), 0.0, 1.0) for n, level, spread in runs]
    )
    decision = DecisionConfig(
        on_threshold=on,
        off_threshold=on * off_ratio,
        smoothing_windows=smoothing,
        min_duration_s=min_duration,
        merge_gap_s=merge_gap,
        cooldown_s=cooldown,
    )
    assert openings(probs, decision, 0.1, 1.0) == every_window(probs, decision, 0.1, 1.0)


def test_openings_on_the_shipped_models_out_of_source_scores():
    """Every held-out file of the shipped model (real-v1 and the packs), fused as it ships,
    at its decision and at a lower and a higher on threshold."""
    config = json.loads((SHIPPED / "config.json").read_text())
    scored, second, _ = saved_choice(SHIPPED)
    fused = fused_scored(scored, second, SecondStageConfig.from_dict(config["second_stage"]))
    cfg, stride = run_config(SHIPPED)
    stride_s, span_s = cfg.column_start_s(cfg.stride_columns(stride)), cfg.window_span_s()
    shipped = DecisionConfig.from_model(config["decision"], config["threshold"])
    total = 0
    for on in (0.6, shipped.on_threshold, 0.9):
        decision = replace(shipped, on_threshold=on, off_threshold=0.7 * on)
        for _, rows in _files_in_order(fused):
            probs = fused.scores[rows]
            count = openings(probs, decision, stride_s, span_s)
            assert count == every_window(probs, decision, stride_s, span_s)
            total += count
    assert total > 500  # the files do open incidents: the skipping is exercised


def test_a_candidate_cannot_skip_windows():
    tracker = IncidentTracker(DecisionConfig(on_threshold=0.5, min_duration_s=1.0))
    tracker.seed_history([0.8, 0.9])  # nothing started: allowed
    assert tracker.update(1.0, 0.9) == [] and tracker.is_active  # a candidate, not yet open
    with pytest.raises(RuntimeError, match="candidate"):
        tracker.seed_history([0.9])
