"""Metric functions against hand-computed values, threshold choice, report files."""

import math
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from detection.evaluation import (
    Scored,
    best_f1_threshold,
    binary_metrics,
    by_input,
    confusion,
    device_copy_name,
    file_level,
    fpr_per_sublabel,
    input_of,
    pr_curve,
    rates,
    roc_auc,
    summarize,
)
from detection.report import build_report


def test_confusion_and_rates_by_hand():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    counts = confusion(truth, pred)
    assert counts == {"tp": 2, "fp": 1, "tn": 3, "fn": 2}
    r = rates(counts)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 4)
    assert r["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert r["accuracy"] == pytest.approx(5 / 8)


def test_rates_undefined_are_zero():
    assert rates({"tp": 0, "fp": 0, "tn": 5, "fn": 0})["precision"] == 0.0
    assert rates({"tp": 0, "fp": 0, "tn": 5, "fn": 0})["f1"] == 0.0


def test_roc_auc_perfect_inverted_random_and_ties():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(y, np.full(4, 0.5)) == 0.5
    # pairs (pos, neg): 0.6>0.1, 0.6=0.6 (half), 0.9>0.1, 0.9>0.6 -> 3.5 / 4
    assert roc_auc(y, np.array([0.1, 0.6, 0.6, 0.9])) == pytest.approx(0.875)
    assert roc_auc(np.array([0, 1, 0, 1, 1]), np.array([0.3, 0.2, 0.1, 0.4, 0.5])) == (
        pytest.approx(5 / 6)
    )
    rng = np.random.default_rng(0)
    yr = rng.integers(0, 2, 20_000)
    assert abs(roc_auc(yr, rng.random(20_000)) - 0.5) < 0.02
    assert math.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))


def test_best_f1_threshold_picks_maximum_and_prefers_higher_on_ties():
    y = np.array([1, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])
    # t=0.9: F1 2/4=.5; 0.8: 4/5=.8; 0.7: 4/6; 0.6: 6/7=.857; 0.3: 6/8; 0.1: 6/9
    threshold, f1 = best_f1_threshold(y, s)
    assert threshold == 0.6
    assert f1 == pytest.approx(6 / 7)
    # tie: 0.8 and 0.4 both give F1 = 2/3 -> the higher threshold wins
    y2 = np.array([1, 0, 0, 1])
    s2 = np.array([0.8, 0.6, 0.5, 0.4])
    assert best_f1_threshold(y2, s2) == (0.8, pytest.approx(2 / 3))
    assert binary_metrics(y2, s2, 0.8)["f1"] == pytest.approx(2 / 3)
    assert binary_metrics(y2, s2, 0.4)["f1"] == pytest.approx(2 / 3)


def test_pr_curve_points():
    curve = pr_curve(np.array([1, 0, 1]), np.array([0.9, 0.5, 0.5]))
    assert list(curve["thresholds"]) == [0.9, 0.5]
    assert list(curve["precision"]) == [1.0, pytest.approx(2 / 3)]
    assert list(curve["recall"]) == [0.5, 1.0]


def test_fpr_per_sublabel_counts_only_its_windows():
    sub = np.array([0, 1, 1, 2, 2, 2, 3])
    scores = np.array([0.9, 0.9, 0.1, 0.9, 0.9, 0.1, 0.1])
    out = fpr_per_sublabel(sub, scores, 0.5)
    assert out["0_0"] == {"n": 2, "fp": 1, "fpr": 0.5}
    assert out["0_1"] == {"n": 3, "fp": 2, "fpr": pytest.approx(2 / 3)}
    assert out["0_2"] == {"n": 1, "fp": 0, "fpr": 0.0}


def test_file_level_any_window_detects():
    file_index = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array([0.1, 0.7, 0.2, 0.3, 0.6, 0.1])
    truth = np.array([1, 1, 0, 0])  # file 3 has no window: not detected
    out = file_level(file_index, scores, truth, 0.5)
    assert (out["tp"], out["fn"], out["fp"], out["tn"]) == (1, 1, 1, 1)
    assert out["n"] == 4


def _scored():
    rng = np.random.default_rng(1)
    n = 200
    targets = rng.integers(-1, 2, n)
    scores = np.clip(np.where(targets == 1, 0.7, 0.3) + rng.normal(0, 0.2, n), 0, 1)
    sub = np.where(targets == 1, 0, np.where(targets == 0, rng.integers(1, 4, n), -1))
    files = np.repeat(np.arange(10), 20)
    truth = np.array([np.any(targets[files == f] == 1) for f in range(10)])
    return Scored(scores, targets, sub, files, truth, [f"f{i}.flac" for i in range(10)])


def test_summarize_and_subset():
    scored = _scored()
    summary = summarize(scored, 0.5)
    lab = scored.targets >= 0
    assert summary["window"]["n"] == int(lab.sum())
    assert summary["window"]["tp"] == int(np.sum((scored.targets == 1) & (scored.scores >= 0.5)))
    part = scored.subset(np.array([2, 5]))
    assert part.scores.shape == (40,)
    assert part.file_names == ["f2.flac", "f5.flac"]
    assert set(part.file_index) == {0, 1}


def test_input_of_reads_the_rate_of_a_device_copy():
    assert input_of("audio/a.flac") == "as recorded"
    assert input_of("audio/a.flac @ 16000 Hz") == "16000 Hz"
    assert input_of("audio/odd @ name.flac") == "as recorded"
    assert input_of("audio/a.flac @ fast Hz") == "as recorded"
    assert input_of(device_copy_name("audio/a @ b.flac", 8000)) == "8000 Hz"


def _two_inputs():
    """Files 0-9 as recorded (4-9 with screams) and 10-19 their 16 kHz copies, whose windows
    all score under 0.5."""
    base = _scored()
    n = len(base.file_names)
    targets = np.where((base.file_index < 4) & (base.targets == 1), 0, base.targets)
    base = replace(base, targets=targets, file_truth=np.arange(n) >= 4)  # 6 scream files
    return Scored(
        scores=np.concatenate([base.scores, base.scores * 0.4]),
        targets=np.tile(base.targets, 2),
        sublabels=np.tile(base.sublabels, 2),
        file_index=np.concatenate([base.file_index, base.file_index + n]),
        file_truth=np.tile(base.file_truth, 2),
        file_names=base.file_names + [f"{name} @ 16000 Hz" for name in base.file_names],
    )


def test_by_input_splits_the_figures_by_how_the_files_were_heard():
    scored = _two_inputs()
    folds = np.tile(np.arange(10) % 2, 2)
    out = by_input(scored, 0.5, folds)
    assert list(out) == ["as recorded", "16000 Hz"]
    recorded = summarize(scored.subset(np.arange(10)), 0.5)
    copies = summarize(scored.subset(np.arange(10, 20)), 0.5)
    assert out["as recorded"]["file"] == recorded["file"]
    assert out["16000 Hz"]["window"] == copies["window"]
    assert out["as recorded"]["files"] == out["16000 Hz"]["files"] == 10
    assert out["16000 Hz"]["file"]["tp"] == 0 < out["as recorded"]["file"]["tp"]
    # together they are the whole set
    both = summarize(scored, 0.5)["file"]
    for key in ("tp", "fp", "fn", "tn"):
        assert out["as recorded"]["file"][key] + out["16000 Hz"]["file"][key] == both[key]
    fold_f1 = [
        file_level(p.file_index, p.scores, p.file_truth, 0.5)["f1"]
        for p in (scored.subset(np.arange(0, 10, 2)), scored.subset(np.arange(1, 10, 2)))
    ]
    assert out["as recorded"]["file_f1_fold_mean"] == pytest.approx(np.mean(fold_f1))
    assert "file_f1_fold_mean" not in by_input(scored, 0.5)["as recorded"]


def test_the_report_has_a_row_per_input_only_when_there_are_several():
    scored = _two_inputs()
    summary = summarize(scored, 0.5)
    md = build_report("r", scored, 0.5, summary, by_input=by_input(scored, 0.5))["report.md"]
    assert "| as recorded | 10 |" in md and "| 16000 Hz | 10 |" in md
    single = _scored()
    md = build_report("r", single, 0.5, summarize(single, 0.5), by_input=by_input(single, 0.5))[
        "report.md"
    ]
    assert "| as recorded |" not in md


def test_report_has_tables_and_png_images():
    scored = _scored()
    summary = summarize(scored, 0.5)
    folds = [{"fold": i, "n_files": 5, "n_groups": 5, "summary": summary} for i in range(2)]
    files = build_report(
        "test report",
        scored,
        0.5,
        summary,
        folds=folds,
        trials=[{"trial": 0, "score": 0.5, "params": {"lr": 0.001}}],
        config={"a": 1},
    )
    md = files["report.md"]
    for image in ("confusion_windows.png", "confusion_files.png", "pr_curve.png"):
        assert files[image][:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({image})" in md
    assert "| mean |" in md and "0_1" in md and "mean F1" in md


def test_alert_figures_run_the_live_decision_file_by_file():
    from detection.alert_figures import alert_figures
    from detection.decision import DecisionConfig

    n = 30
    loud = np.zeros(n)
    loud[10:20] = 0.99  # one second over the threshold: one incident
    two = np.zeros(n)
    two[2:8] = two[20:26] = 0.99  # two bursts 1.2 s apart: merged into one incident
    per_file = [loud, np.full(n, 0.1), loud, np.full(n, 0.2), two]
    truth = np.array([False, False, True, True, False])
    # Windows of the files interleaved, as folds concatenate them; each file in time order.
    file_index = np.tile(np.arange(5), n)
    scores = np.stack(per_file, axis=1).reshape(-1)
    scored = Scored(
        scores=scores,
        targets=np.zeros(scores.size, dtype=np.int8),
        sublabels=np.zeros(scores.size, dtype=np.int8),
        file_index=file_index,
        file_truth=truth,
        file_names=[f"f{i}" for i in range(5)],
    )
    decision = DecisionConfig(on_threshold=0.9, off_threshold=0.6, smoothing_windows=1)
    figures = alert_figures(scored, decision, stride_s=0.1, span_s=1.0)
    hours = 3 * (1.0 + (n - 1) * 0.1) / 3600
    assert figures["false_alerts"] == 2  # file 0 once, file 4 once (merged), file 1 never
    assert figures["non_scream_hours"] == round(hours, 4)
    assert figures["false_alerts_per_hour"] == round(2 / hours, 3)
    assert figures["scream_files"] == 2 and figures["scream_files_alerted"] == 1
    split = replace(decision, merge_gap_s=0.5, cooldown_s=0.0)
    assert alert_figures(scored, split, 0.1, 1.0)["false_alerts"] == 3


def _random_scored(seed: int = 3, n_files: int = 40) -> Scored:
    """Files of 20-60 windows, a third with scream-like bursts, windows interleaved."""
    rng = np.random.default_rng(seed)
    scores, file_index, truth = [], [], []
    for f in range(n_files):
        n = int(rng.integers(20, 60))
        probs = rng.beta(0.5, 4.0, n)
        scream = f % 3 == 0
        if scream or f % 7 == 1:  # screams, and some look-alikes among the non-screams
            at = int(rng.integers(0, n - 8))
            probs[at : at + int(rng.integers(1, 8))] = rng.uniform(0.8, 1.0)
        scores.append(probs)
        file_index.append(np.full(n, f))
        truth.append(scream)
    order = np.argsort(np.concatenate([np.arange(len(s)) for s in scores]), kind="stable")
    return Scored(
        scores=np.concatenate(scores)[order],
        targets=np.zeros(order.size, dtype=np.int8),
        sublabels=np.zeros(order.size, dtype=np.int8),
        file_index=np.concatenate(file_index)[order],
        file_truth=np.array(truth),
        file_names=[f"f{i}" for i in range(n_files)],
    )


def test_alert_sweep_agrees_with_the_decision_logic_at_every_on_threshold():
    from detection.alert_figures import alert_figures, alert_sweep, on_threshold_grid
    from detection.decision import DecisionConfig

    scored = _random_scored()
    base = DecisionConfig(on_threshold=0.9, off_threshold=0.63)
    grid = on_threshold_grid(0.5, 0.999, 0.25)
    rows = alert_sweep(scored, base, 0.1, 1.0, grid, off_ratio=0.7)
    assert [r["on_threshold"] for r in rows] == list(grid)
    alerted_counts = set()
    for row in rows:
        cfg = replace(
            base, on_threshold=row["on_threshold"], off_threshold=0.7 * row["on_threshold"]
        )
        figures = alert_figures(scored, cfg, 0.1, 1.0)
        assert row["false_alerts"] == figures["false_alerts"]
        assert row["tp"] == figures["scream_files_alerted"]
        assert row["tp"] + row["fn"] == figures["scream_files"]
        alerted_counts.add(row["tp"] + row["fp"])
    assert len(alerted_counts) > 3  # the sweep really moves through the operating points
    # Higher on thresholds never alert more files.
    assert all(a["tp"] + a["fp"] >= b["tp"] + b["fp"] for a, b in pairwise(rows))


def test_the_moving_average_is_the_running_mean_the_tracker_sees():
    from collections import deque

    from detection.alert_figures import moving_average

    scored = _random_scored(seed=5, n_files=12)
    for k in (1, 3, 5):
        for f in range(12):
            probs = scored.scores[scored.file_index == f]
            history, means = deque(maxlen=k), []
            for p in probs:
                history.append(p)
                means.append(sum(history) / len(history))
            assert moving_average(probs, k) == pytest.approx(means, abs=1e-12)


def test_best_alert_on_threshold_takes_the_best_f1_and_the_higher_threshold_on_a_tie():
    from detection.alert_figures import best_alert_on_threshold

    rows = [
        {"on_threshold": 0.8, "f1": 0.7},
        {"on_threshold": 0.9, "f1": 0.75},
        {"on_threshold": 0.95, "f1": 0.75},
        {"on_threshold": 0.99, "f1": 0.6},
    ]
    assert best_alert_on_threshold(rows)["on_threshold"] == 0.95
    with pytest.raises(ValueError):
        best_alert_on_threshold([])


def test_out_of_fold_scores_round_trip_through_npz(tmp_path):
    scored = _random_scored(seed=8, n_files=6)
    scored.targets[:5] = [1, 0, -1, 1, 0]
    scored.sublabels[:5] = [0, 2, -1, 0, 3]
    path = tmp_path / "out_of_fold.npz"
    path.write_bytes(scored.to_npz())
    back = Scored.from_npz(path)
    assert np.array_equal(back.scores, scored.scores.astype(np.float32))
    assert np.array_equal(back.targets, scored.targets)
    assert np.array_equal(back.sublabels, scored.sublabels)
    assert np.array_equal(back.file_index, scored.file_index)
    assert np.array_equal(back.file_truth, scored.file_truth)
    assert back.file_names == scored.file_names
    np.savez(tmp_path / "other.npz", scores=np.zeros(3))
    with pytest.raises(ValueError, match="not a scores file"):
        Scored.from_npz(tmp_path / "other.npz")


def test_the_report_shows_the_live_point_of_the_sweep_and_copes_without_non_scream_audio():
    from detection.alert_figures import alert_sweep, on_threshold_grid
    from detection.decision import DecisionConfig

    scored = _random_scored(seed=4, n_files=15)
    base = DecisionConfig(on_threshold=0.9, off_threshold=0.63)
    threshold = 0.9
    for data in (scored, scored.subset(np.flatnonzero(scored.file_truth))):  # then screams only
        rows = alert_sweep(data, base, 0.1, 1.0, on_threshold_grid(0.5, 0.999, 0.25))
        alerts = {
            "on_threshold": rows[3]["on_threshold"],
            "off_threshold": 0.7 * rows[3]["on_threshold"],
            "smoothing_windows": 3,
            "min_duration_s": 0.3,
            "false_alerts": rows[3]["false_alerts"],
            "non_scream_hours": 0.0,
            "false_alerts_per_hour": rows[3]["false_alerts_per_hour"],
            "scream_files": rows[3]["tp"] + rows[3]["fn"],
            "scream_files_alerted": rows[3]["tp"],
        }
        files = build_report(
            "t", data, threshold, {**summarize(data, threshold), "alerts": alerts}, alert_sweep=rows
        )
        assert files["alert_sweep.png"][:8] == b"\x89PNG\r\n\x1a\n"
        md = files["report.md"]
        assert f"{rows[3]['on_threshold']:.4f} (live)" in md and "(alert_sweep.png)" in md
        assert "mean of 3 windows, at least 0.3 s" in md and "(off threshold 0.7 of each)" in md
