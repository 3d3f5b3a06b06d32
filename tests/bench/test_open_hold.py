"""bench.open_hold on the committed out-of-source scores: hearing every flagged window gives
the shipped choice's published alert figures, and the live hold while an incident is open spares
YAMNet windows without changing which scream files are alerted or adding false alerts."""

from __future__ import annotations

import json

from bench.open_hold import MODEL, compare_hold, main
from detection.fusion import HOLD_OPEN_S


def test_holding_while_open_spares_yamnet_and_keeps_the_alerts(capsys):
    published = json.loads((MODEL / "second_stage" / "second_stage.json").read_text())
    alerts = published[published["best"]]["alerts"]
    result = compare_hold(MODEL, HOLD_OPEN_S)
    assert result["false_alerts"] == alerts["false_alerts"]
    assert result["alerted"] == alerts["scream_files_alerted"]
    assert result["alerted_holding"] == result["alerted"]
    assert result["false_alerts_holding"] <= result["false_alerts"]
    assert result["heard_holding"] < 0.9 * result["heard"]
    nothing_held = compare_hold(MODEL, 0.0)
    assert nothing_held["heard_holding"] == nothing_held["heard"] == result["heard"]
    assert nothing_held["files_changed"] == 0
    main(["--hold", "1"])
    assert "hold 1 s: YAMNet hears" in capsys.readouterr().out
