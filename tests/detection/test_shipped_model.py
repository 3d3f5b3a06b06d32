"""The shipped model's published figures are what its own out-of-fold scores give.

``metrics.json`` (and the tables of ``report.md`` and ``docs/models.md`` copied from it) must
not drift from ``out_of_fold.npz``: both are checked here by recomputing them.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from detection.dataset import scan_dataset
from detection.evaluation import Scored, by_input, summarize
from detection.folds import grouped_folds

SHIPPED = Path(__file__).resolve().parents[2] / "detection" / "shipped" / "default"


@pytest.fixture(scope="module")
def shipped():
    metrics = json.loads((SHIPPED / "metrics.json").read_text())
    return metrics, Scored.from_npz(SHIPPED / "out_of_fold.npz")


def test_out_of_fold_figures_recompute_from_the_saved_scores(shipped):
    metrics, scored = shipped
    summary = summarize(scored, metrics["threshold"])
    published = metrics["cv"]["out_of_fold"]
    for level in ("window", "file"):
        for key in ("tp", "fp", "tn", "fn"):
            assert summary[level][key] == published[level][key], (level, key)
        assert summary[level]["f1"] == pytest.approx(published[level]["f1"], abs=1e-12)


def test_figures_by_input_recompute_with_the_training_folds(shipped, real_v1):
    metrics, scored = shipped
    recordings = scan_dataset(real_v1, report=lambda *args: None)
    assert [r.rel for r in recordings] == scored.file_names[: len(recordings)]
    folds = grouped_folds(recordings, metrics["cv"]["folds"], 0)
    copies = len(scored.file_names) // len(recordings)
    rows = by_input(scored, metrics["threshold"], np.tile(folds, copies))
    published = metrics["cv"]["by_input"]
    assert list(rows) == list(published) == ["as recorded", "16000 Hz"]
    for label, row in rows.items():
        for key in ("tp", "fp", "tn", "fn"):
            assert row["file"][key] == published[label]["file"][key], (label, key)
        assert row["file_f1_fold_mean"] == pytest.approx(published[label]["file_f1_fold_mean"])
    # the folds are the ones training used: the per-fold file counts agree
    assert [int(np.sum(folds == k)) for k in range(5)] == [
        f["n_files"] for f in metrics["cv"]["per_fold"]
    ]


def test_the_shipped_second_stage_is_the_out_of_source_choice():
    """``config.json``'s second stage, threshold and decision are what ``second_stage`` chooses
    from the saved leave-one-source-out scores (network and YAMNet, ``second_stage/``)."""
    from detection.second_stage_choice import compare, run_config
    from eyescream_site.management.commands.second_stage import reuse_scores

    config = json.loads((SHIPPED / "config.json").read_text())
    folder = SHIPPED / "second_stage"
    scored = Scored.from_npz(folder / "loso_out_of_fold.npz")
    second = reuse_scores(folder / "yamnet_window_scores.npz", scored)
    assert second is not None
    cfg, stride_s = run_config(folder, SHIPPED)
    result = compare(scored, second, cfg, stride_s)
    best = result[result["best"]]
    assert config["second_stage"] == best["second_stage"]
    assert config["threshold"] == pytest.approx(best["threshold"], abs=1e-9)
    assert config["decision"] == pytest.approx(best["decision"])
    published = json.loads((folder / "second_stage.json").read_text())
    assert published["best"] == result["best"]
    assert published[result["best"]]["file"]["f1"] == pytest.approx(best["file"]["f1"])
    # Out of source the fusion beats the network alone by a wide margin.
    assert best["file"]["f1"] > result["network"]["file"]["f1"] + 0.15
