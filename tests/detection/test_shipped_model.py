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
    """Each held-out file's fold is its source's (the run held out whole sources): real-v1's
    sources from its manifest, a pack clip's from its package folder (the packs are not
    needed: their figures come from the saved scores)."""
    metrics, scored = shipped
    assert metrics["cv"]["validation"] == "loso"
    recordings = scan_dataset(real_v1, report=lambda *args: None)
    fold_of_source = {row["source"]: row["fold"] for row in metrics["by_source"]["sources"]}
    n = len(scored.file_names) // 2  # every file as recorded, then at 16 kHz
    assert all(name.endswith(" @ 16000 Hz") for name in scored.file_names[n:])
    source_of = {f"real-v1/{r.rel}": r.source for r in recordings}
    folds = []
    for name in scored.file_names[:n]:
        if name.startswith("real-v1/"):
            folds.append(fold_of_source[source_of[name]])
        else:  # packs/<pack>/audio/<package>/<clip>
            assert name.startswith("packs/"), name
            folds.append(fold_of_source[name.split("/")[3]])
    assert sum(name.startswith("real-v1/") for name in scored.file_names[:n]) == len(recordings)
    folds = np.asarray(folds)
    rows = by_input(scored, metrics["threshold"], np.tile(folds, 2))
    published = metrics["cv"]["by_input"]
    assert list(rows) == ["as recorded", "16000 Hz"] and set(published) == set(rows)
    for label, row in rows.items():
        for key in ("tp", "fp", "tn", "fn"):
            assert row["file"][key] == published[label]["file"][key], (label, key)
        assert row["file_f1_fold_mean"] == pytest.approx(published[label]["file_f1_fold_mean"])
    # the folds are the ones training used: the per-fold file counts agree
    assert [int(np.sum(folds == k)) for k in range(metrics["cv"]["folds"])] == [
        f["n_files"] for f in metrics["cv"]["per_fold"]
    ]


def test_the_shipped_second_stage_is_the_out_of_source_choice(shipped):
    """``config.json``'s second stage, threshold and decision are what ``second_stage`` chooses
    from the saved leave-one-source-out scores (the network's ``out_of_fold.npz``, YAMNet's in
    ``second_stage/``, scored on the windows the network put at or above the saved floor): the
    published weight is the one the choice's rule takes from the published rows, and its
    threshold, decision and exact gate are recomputed; then the gate raised while the figures
    stay no worse (the published sweep; the chosen gate and the first worse one recomputed).
    ``compare`` itself, every weight, is tested in ``test_second_stage.py``."""
    from detection.fusion import SecondStageConfig
    from detection.second_stage_choice import (
        F1_TOLERANCE,
        _figures,
        choose,
        fused_scored,
        no_worse,
        run_config,
        saved_choice,
    )
    from eyescream_site.management.commands.second_stage import reuse_scores

    config = json.loads((SHIPPED / "config.json").read_text())
    folder = SHIPPED / "second_stage"
    scored, second, floor = saved_choice(SHIPPED)
    # the saved YAMNet scores are of the windows this network flagged
    assert np.array_equal(reuse_scores(folder / "yamnet_window_scores.npz", scored, floor), second)
    cfg, stride_s = run_config(SHIPPED)
    published = json.loads((folder / "second_stage.json").read_text())
    rows = {k: r for k, r in published.items() if k.startswith("fused ")}
    # the best row's figures are at its raised gate; the choice of weight saw its exact gate's
    at_exact = {k: r["gate_sweep"][0] if "gate_sweep" in r else None for k, r in rows.items()}
    f1 = {k: e["file_f1"] if e else rows[k]["file"]["f1"] for k, e in at_exact.items()}
    share = {
        k: e["flagged_window_share"] if e else rows[k]["flagged_window_share"]
        for k, e in at_exact.items()
    }
    exact_rows = [k for k, r in rows.items() if not r["inexact"]]
    top = max(f1[k] for k in exact_rows)
    close = [k for k in exact_rows if f1[k] >= top - F1_TOLERANCE]
    assert published["best"] == min(close, key=lambda k: (share[k], -f1[k]))
    chosen = published[published["best"]]
    exact = choose(scored, second, chosen["second_stage"]["weight"], cfg, stride_s)
    assert exact["second_stage"]["gate"] >= floor
    assert chosen["exact_gate"] == pytest.approx(exact["second_stage"]["gate"], abs=1e-12)
    assert config["second_stage"] == chosen["second_stage"]
    assert config["second_stage"]["gate"] >= exact["second_stage"]["gate"]
    assert config["threshold"] == pytest.approx(exact["threshold"], abs=1e-9)
    assert config["decision"] == pytest.approx(exact["decision"])
    # The sweep: every gate up to the chosen one no worse than the exact gate, the next worse.
    sweep = chosen["gate_sweep"]
    gates = [entry["gate"] for entry in sweep]
    at = gates.index(config["second_stage"]["gate"])
    assert sweep[0]["exact"] and sweep[0]["false_alerts"] == exact["alerts"]["false_alerts"]

    def figures_at(gate):
        stage = SecondStageConfig(weight=config["second_stage"]["weight"], gate=gate)
        cascaded = fused_scored(scored, second, stage)
        return _figures(cascaded, exact["threshold"], cfg, stride_s, exact["decision"])

    shipped_figures = figures_at(gates[at])
    assert no_worse(shipped_figures, exact)
    assert shipped_figures["alerts"]["false_alerts"] == sweep[at]["false_alerts"]
    assert shipped_figures["file"]["f1"] == pytest.approx(chosen["file"]["f1"])
    if at + 1 < len(sweep):
        assert not no_worse(figures_at(gates[at + 1]), exact)
    # Out of source the fusion beats the network alone at its own decision: no lower file F1,
    # no more false alerts an hour, more scream files alerted.
    network = published["network"]
    assert chosen["file"]["f1"] >= network["file"]["f1"]
    fused, alone = chosen["alerts"], network["alerts"]
    assert fused["false_alerts_per_hour"] <= alone["false_alerts_per_hour"]
    assert fused["scream_files_alerted"] > alone["scream_files_alerted"]
