"""Decision logic: smoothing, hysteresis, minimum duration, merging, cooldown, level gate."""

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.decision import (
    CLOSED,
    OPENED,
    UPDATED,
    DecisionConfig,
    IncidentTracker,
    LevelGate,
)

STRIDES = st.sampled_from([0.1, 0.2, 0.3])


@st.composite
def configs(draw, max_cooldown_s: float = 6.0):
    on = draw(st.floats(0.2, 0.95))
    off = draw(st.floats(0.05, 1.0)) * on
    return DecisionConfig(
        on_threshold=on,
        off_threshold=max(off, 0.01),
        smoothing_windows=draw(st.integers(1, 5)),
        min_duration_s=draw(st.floats(0.0, 1.0)),
        merge_gap_s=draw(st.floats(0.0, 3.0)),
        cooldown_s=draw(st.floats(0.0, max_cooldown_s)),
    )


def run(tracker: IncidentTracker, probs: list[float], stride: float, t0: float = 1.0):
    """Feed probabilities at window end times t0, t0 + stride, ...; then end the stream."""
    events = []
    for i, p in enumerate(probs):
        events += tracker.update(t0 + i * stride, p)
    events += tracker.finish()
    return events


def kinds(events):
    return [e.kind for e in events]


def lows(draw, n: int, cfg: DecisionConfig) -> list[float]:
    return draw(st.lists(st.floats(0.0, cfg.off_threshold * 0.999), min_size=n, max_size=n))


def highs(draw, n: int, cfg: DecisionConfig) -> list[float]:
    return draw(st.lists(st.floats(cfg.on_threshold, 1.0), min_size=n, max_size=n))


def windows_to_open(cfg: DecisionConfig, stride: float) -> int:
    """High windows that certainly open an incident (smoothing filled, min duration met)."""
    return cfg.smoothing_windows + math.ceil(cfg.min_duration_s / stride) + 1


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(cfg=configs(), stride=STRIDES, data=st.data())
def test_constant_score_below_off_threshold_never_opens(cfg, stride, data):
    value = data.draw(st.floats(0.0, cfg.off_threshold * 0.999))
    n = data.draw(st.integers(1, 400))
    tracker = IncidentTracker(cfg, window_span_s=1.0)
    assert run(tracker, [value] * n, stride) == []
    assert tracker.opened == 0 and tracker.windows == n


@settings(max_examples=200, deadline=None)
@given(cfg=configs(), stride=STRIDES, data=st.data())
def test_scores_that_never_reach_the_on_threshold_never_open(cfg, stride, data):
    probs = data.draw(st.lists(st.floats(0.0, cfg.on_threshold * 0.999), min_size=1, max_size=300))
    assert run(IncidentTracker(cfg), probs, stride) == []


@settings(max_examples=200, deadline=None)
@given(cfg=configs(), stride=STRIDES, data=st.data())
def test_one_long_scream_gives_one_incident(cfg, stride, data):
    n_high = windows_to_open(cfg, stride) + data.draw(st.integers(0, 300))
    probs = (
        lows(data.draw, data.draw(st.integers(0, 30)), cfg)
        + highs(data.draw, n_high, cfg)
        + lows(data.draw, data.draw(st.integers(0, 60)), cfg)
    )
    events = run(IncidentTracker(cfg, update_interval_s=0.5), probs, stride)
    assert [k for k in kinds(events) if k != UPDATED] == [OPENED, CLOSED]
    closed = events[-1].incident
    assert closed.ended_s is not None and closed.started_s <= closed.opened_s <= closed.ended_s
    assert cfg.off_threshold <= closed.mean_score <= closed.peak_score <= 1.0
    times = [t for t, _ in closed.scores]
    assert times == sorted(times)


@settings(max_examples=200, deadline=None)
@given(cfg=configs(), stride=STRIDES, data=st.data())
def test_two_screams_further_apart_than_merge_gap_and_cooldown_give_two(cfg, stride, data):
    need = cfg.merge_gap_s + cfg.cooldown_s + (cfg.smoothing_windows + 1) * stride
    n_gap = math.ceil(need / stride) + data.draw(st.integers(0, 30))
    n_open = windows_to_open(cfg, stride)
    probs = (
        highs(data.draw, n_open + data.draw(st.integers(0, 40)), cfg)
        + lows(data.draw, n_gap, cfg)
        + highs(data.draw, n_open + data.draw(st.integers(0, 40)), cfg)
        + lows(data.draw, data.draw(st.integers(0, 20)), cfg)
    )
    events = [e for e in run(IncidentTracker(cfg), probs, stride) if e.kind != UPDATED]
    assert kinds(events) == [OPENED, CLOSED, OPENED, CLOSED]
    first, second = events[1].incident, events[3].incident
    assert second.started_s > first.ended_s


@settings(max_examples=200, deadline=None)
@given(cfg=configs(), stride=STRIDES, data=st.data())
def test_two_screams_within_the_merge_gap_give_one_incident(cfg, stride, data):
    room = int(cfg.merge_gap_s / stride + 1e-9) - cfg.smoothing_windows
    n_gap = data.draw(st.integers(0, max(0, room)))
    n_open = windows_to_open(cfg, stride)
    second = highs(data.draw, n_open, cfg) if room >= 0 else []
    probs = highs(data.draw, n_open, cfg) + lows(data.draw, n_gap, cfg) + second
    events = run(IncidentTracker(cfg), probs, stride)
    assert [k for k in kinds(events) if k != UPDATED] == [OPENED, CLOSED]


@settings(max_examples=100, deadline=None)
@given(cfg=configs(), stride=STRIDES, data=st.data())
def test_candidates_shorter_than_the_minimum_duration_never_open(cfg, stride, data):
    cfg = DecisionConfig(
        on_threshold=cfg.on_threshold,
        off_threshold=cfg.off_threshold,
        smoothing_windows=1,
        min_duration_s=data.draw(st.floats(0.5, 2.0)),
        merge_gap_s=cfg.merge_gap_s,
        cooldown_s=cfg.cooldown_s,
    )
    burst = max(1, math.ceil(cfg.min_duration_s / stride) - 1)
    probs = []
    for _ in range(data.draw(st.integers(1, 10))):
        probs += highs(data.draw, data.draw(st.integers(1, burst)), cfg) + lows(data.draw, 1, cfg)
    tracker = IncidentTracker(cfg)
    assert run(tracker, probs, stride) == []
    assert tracker.discarded >= 1


# --------------------------------------------------------------------------- behaviour


def plain(**changes) -> DecisionConfig:
    base = dict(
        on_threshold=0.6,
        off_threshold=0.4,
        smoothing_windows=1,
        min_duration_s=0.0,
        merge_gap_s=1.0,
        cooldown_s=0.0,
    )
    return DecisionConfig(**{**base, **changes})


def test_hysteresis_keeps_an_incident_open_between_the_thresholds():
    tracker = IncidentTracker(plain(), update_interval_s=100)
    events = run(tracker, [0.9] + [0.5, 0.45, 0.55] * 20 + [0.1] * 20, 0.1)
    assert kinds(events) == [OPENED, CLOSED]
    assert events[1].incident.ended_s == pytest.approx(1.0 + 60 * 0.1)


def test_opening_waits_for_the_minimum_duration_and_dates_the_start_by_the_window():
    tracker = IncidentTracker(plain(min_duration_s=0.3), window_span_s=1.0)
    events = []
    for i, p in enumerate([0.0, 0.9, 0.9, 0.9]):
        events += tracker.update(2.0 + i * 0.1, p)
    assert events == []
    events = tracker.update(2.4, 0.9)
    assert kinds(events) == [OPENED]
    incident = events[0].incident
    assert incident.opened_s == pytest.approx(2.4)
    assert incident.started_s == pytest.approx(1.1)  # the first high window ended at 2.1
    assert incident.ended_s is None


def test_smoothing_ignores_a_single_spike():
    cfg = plain(smoothing_windows=3)
    assert run(IncidentTracker(cfg), [0.0] * 5 + [1.0] + [0.0] * 5, 0.1) == []
    assert kinds(run(IncidentTracker(cfg), [0.0] * 5 + [1.0] * 3 + [0.0] * 30, 0.1)) == [
        OPENED,
        CLOSED,
    ]


def test_a_merged_scream_updates_the_open_incident_at_once():
    tracker = IncidentTracker(plain(merge_gap_s=1.0), update_interval_s=100)
    events = run(tracker, [0.9] * 3 + [0.1] * 5 + [0.95] * 3 + [0.1] * 30, 0.1)
    assert kinds(events) == [OPENED, UPDATED, CLOSED]
    assert events[1].incident.ended_s is None
    assert events[2].incident.peak_score == pytest.approx(0.95)


def test_updates_are_rate_limited_while_active():
    tracker = IncidentTracker(plain(), update_interval_s=1.0)
    events = run(tracker, [0.9] * 51, 0.1)  # 5 s of scream after the opening window
    assert kinds(events) == [OPENED] + [UPDATED] * 5 + [CLOSED]


def test_event_incidents_are_snapshots():
    tracker = IncidentTracker(plain())
    opened = tracker.update(1.0, 0.9)[0].incident
    for i in range(1, 10):
        tracker.update(1.0 + i * 0.1, 0.8)
    assert opened.scores == [(1.0, 0.9)] and opened.ended_s is None


def test_cooldown_suppresses_a_short_scream_and_delays_a_long_one():
    cfg = plain(merge_gap_s=0.5, cooldown_s=3.0)
    gap = [0.0] * 10  # 1 s: more than the merge gap, less than the cooldown
    tracker = IncidentTracker(cfg)
    events = run(tracker, [0.9] * 3 + gap + [0.9] * 3 + [0.0] * 40, 0.1)
    assert kinds(events) == [OPENED, CLOSED]
    assert tracker.suppressed == 1

    tracker = IncidentTracker(cfg)
    events = run(tracker, [0.9] * 3 + gap + [0.9] * 40, 0.1)
    assert kinds(events)[:3] == [OPENED, CLOSED, OPENED]
    first_end = events[1].incident.ended_s
    assert events[2].incident.opened_s >= first_end + cfg.cooldown_s - 1e-9


def test_finish_closes_an_open_incident_and_drops_a_candidate():
    tracker = IncidentTracker(plain(min_duration_s=1.0))
    tracker.update(1.0, 0.9)
    assert tracker.finish() == [] and tracker.discarded == 1
    tracker = IncidentTracker(plain())
    tracker.update(1.0, 0.9)
    (event,) = tracker.finish()
    assert event.kind == CLOSED and event.incident.ended_s == 1.0


def test_curve_is_bounded():
    tracker = IncidentTracker(plain(), max_curve_points=50)
    events = run(tracker, [0.9] * 500, 0.1)
    assert len(events[-1].incident.scores) == 50


# --------------------------------------------------------------------------- configuration


def test_from_model_uses_the_artifact_threshold_and_decision_block():
    cfg = DecisionConfig.from_model(
        {"smoothing_windows": 2, "merge_gap_s": 1.5, "cooldown_s": 4.0}, threshold=0.62
    )
    assert cfg.on_threshold == pytest.approx(0.62)
    assert cfg.off_threshold == pytest.approx(0.62 * 0.7)
    assert (cfg.smoothing_windows, cfg.merge_gap_s, cfg.cooldown_s) == (2, 1.5, 4.0)
    with pytest.raises(ValueError, match="unknown decision parameters"):
        DecisionConfig.from_model({"on_treshold": 0.5})


def test_overrides_replace_given_fields_only_and_validate():
    cfg = plain()
    site = cfg.with_overrides(merge_gap_s=3.0, cooldown_s=None)
    assert site.merge_gap_s == 3.0 and site.cooldown_s == cfg.cooldown_s
    with pytest.raises(ValueError, match="off_threshold"):
        cfg.with_overrides(off_threshold=0.9)
    with pytest.raises(ValueError, match="unknown"):
        cfg.with_overrides(threshold=0.3)
    with pytest.raises(ValueError, match="on_threshold"):
        DecisionConfig(on_threshold=1.0)


@given(a=st.floats(0.0, 1.0), b=st.floats(0.0, 1.0))
def test_higher_sensitivity_never_raises_the_thresholds(a, b):
    lo, hi = sorted((a, b))
    cfg = plain()
    assert cfg.with_sensitivity(hi).on_threshold <= cfg.with_sensitivity(lo).on_threshold
    shifted = cfg.with_sensitivity(hi)
    assert 0 < shifted.off_threshold <= shifted.on_threshold < 1
    assert cfg.with_sensitivity(0.5).on_threshold == pytest.approx(cfg.on_threshold)
    assert cfg.with_overrides(sensitivity=hi) == shifted


def test_level_gate_counts_what_it_skips():
    gate = LevelGate(-60.0)
    assert [gate.passes(x) for x in (-90.0, -59.0, -60.0, -75.0)] == [False, True, True, False]
    assert (gate.scored, gate.gated) == (2, 2)


def test_with_on_threshold_keeps_the_off_threshold_at_or_below_it():
    base = DecisionConfig(on_threshold=0.9, off_threshold=0.63)
    assert base.with_on_threshold(0.95) == replace(base, on_threshold=0.95)
    lowered = base.with_on_threshold(0.5)
    assert lowered.on_threshold == lowered.off_threshold == 0.5
    assert lowered.smoothing_windows == base.smoothing_windows
