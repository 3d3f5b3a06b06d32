"""What holding YAMNet's score while an incident is open changes: ``python -m bench.open_hold``.

Live, a flagged window of a stream whose incident is open takes the YAMNet score of the last
window heard if that one ended less than ``--hold`` seconds before it (``detection.fusion.held``,
``HOLD_OPEN_S``). From the out-of-source scores committed beside the shipped model (every window
of every held-out file; YAMNet's score of the windows the network flagged, ``second_stage/``),
each file goes through the live decision logic (``IncidentTracker``) twice, hearing every
flagged window and holding, window by window. Prints the windows YAMNet hears each way, the files
whose incidents opened differently, and the change in false alerts (non-scream files) and in
scream files alerted. Seconds of CPU; no audio is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detection.alert_figures import _files_in_order  # noqa: E402
from detection.decision import OPENED, DecisionConfig, IncidentTracker  # noqa: E402
from detection.fusion import HOLD_OPEN_S, held  # noqa: E402
from detection.second_stage_choice import run_config, saved_choice  # noqa: E402

MODEL = REPO / "detection" / "shipped" / "default"


def openings(network, second, flagged, weight, decision, stride_s, span_s, hold_s) -> tuple:
    """``(incidents opened, windows YAMNet heard)`` of one file through the live decision."""
    tracker = IncidentTracker(decision, window_span_s=span_s)
    opened = heard = 0
    last: tuple[float, float] | None = None
    for i in range(network.size):
        t_end = span_s + i * stride_s
        yamnet = 0.0
        if flagged[i]:
            if held(t_end, tracker.is_open, last[0] if last else None, hold_s):
                yamnet = last[1]
            else:
                yamnet = float(second[i])
                last = (t_end, yamnet)
                heard += 1
        fused = (1.0 - weight) * float(network[i]) + weight * yamnet
        opened += sum(event.kind == OPENED for event in tracker.update(t_end, fused))
    return opened, heard


def compare_hold(model_dir: Path, hold_s: float) -> dict:
    config = json.loads((model_dir / "config.json").read_text())
    scored, second, _ = saved_choice(model_dir)
    cfg, stride = run_config(model_dir)
    stride_s = cfg.column_start_s(cfg.stride_columns(stride))
    span_s = cfg.window_span_s()
    weight, gate = config["second_stage"]["weight"], config["second_stage"]["gate"]
    decision = DecisionConfig.from_model(config["decision"], config["threshold"])
    out = {"hold_s": hold_s, "heard": 0, "heard_holding": 0, "files_changed": 0}
    out.update(false_alerts=0, false_alerts_holding=0, alerted=0, alerted_holding=0)
    for f, rows in _files_in_order(scored):
        network, flagged = scored.scores[rows], scored.scores[rows] >= gate
        if not flagged.any():  # YAMNet hears nothing either way
            continue
        every = openings(network, second[rows], flagged, weight, decision, stride_s, span_s, 0.0)
        held = openings(network, second[rows], flagged, weight, decision, stride_s, span_s, hold_s)
        out["heard"] += every[1]
        out["heard_holding"] += held[1]
        out["files_changed"] += every[0] != held[0]
        if scored.file_truth[f]:
            out["alerted"] += every[0] > 0
            out["alerted_holding"] += held[0] > 0
        else:
            out["false_alerts"] += every[0]
            out["false_alerts_holding"] += held[0]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(MODEL), help="a model with second_stage/ scores")
    parser.add_argument("--hold", type=float, default=HOLD_OPEN_S, help="seconds (live default)")
    args = parser.parse_args(argv)
    r = compare_hold(Path(args.model), args.hold)
    print(
        f"hold {r['hold_s']:g} s: YAMNet hears {r['heard_holding']} windows instead of"
        f" {r['heard']} ({r['heard_holding'] / max(1, r['heard']):.1%}); files whose incidents"
        f" opened differently: {r['files_changed']}; false alerts {r['false_alerts']} ->"
        f" {r['false_alerts_holding']}; scream files alerted {r['alerted']} ->"
        f" {r['alerted_holding']} (files where the network flagged a window)"
    )


if __name__ == "__main__":
    main()
