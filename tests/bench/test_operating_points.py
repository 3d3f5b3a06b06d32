"""bench.operating_points on the committed out-of-source scores: the shipped decision shape's
best point is the shipped live decision with its published figures, and every point offered
for a quieter site keeps within its false-alert limit."""

from __future__ import annotations

import json

from bench.operating_points import MODEL, SHAPES, main, operating_points


def test_the_shipped_shape_gives_the_shipped_decision_and_quieter_points_keep_the_limit(capsys):
    config = json.loads((MODEL / "config.json").read_text())
    published = json.loads((MODEL / "second_stage" / "second_stage.json").read_text())
    alerts = published[published["best"]]["alerts"]
    shapes = (
        (config["decision"]["smoothing_windows"], config["decision"]["min_duration_s"]),
        (3, 0.3),
    )
    shipped, longer = operating_points(MODEL, 2.0, shapes)
    best = shipped["best_f1"]
    assert abs(best["on_threshold"] - config["decision"]["on_threshold"]) < 1e-6
    assert best["false_alerts"] == alerts["false_alerts"]
    assert abs(best["recall"] - alerts["scream_files_alerted"] / alerts["scream_files"]) < 1e-9
    for point in (shipped, longer):
        quiet = point["within"]
        assert quiet["false_alerts_per_hour"] <= 2.0
        assert quiet["on_threshold"] > point["best_f1"]["on_threshold"]  # quieter: stricter
        assert quiet["recall"] <= point["best_f1"]["recall"]
    # real-v1's files alone: a part of the same held-out files, so no more false alerts at the
    # same on threshold
    (own,) = operating_points(MODEL, 2.0, shapes[:1], only="real-v1/")
    assert own["best_f1"]["f1"] != best["f1"]
    main(["--max-per-hour", "2"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| smoothing windows |") and len(table) == 2 + len(SHAPES)
