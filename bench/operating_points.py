"""The shipped model's live operating points out of source: ``python -m bench.operating_points``.

From the leave-one-source-out scores committed beside the shipped model
(``detection/shipped/default/``: every window of real-v1 and the packs as recorded and at 16 kHz,
scored by a network that never heard its source, and YAMNet's score of the windows the network
flagged, ``second_stage/``), the
fused score at the shipped weight and gate (``--gate`` another) goes through the live decision logic
(``detection.alert_figures.alert_sweep``) for several decision shapes (smoothing windows, minimum
duration). For each shape it prints the on threshold with the best file F1 and, beside it, the
best F1 among the on thresholds that keep false alerts at or below ``--max-per-hour`` in the
held-out files: what a site that wants fewer false alerts gives up in recall, as a starting point
for its decision override (``decision`` on the site or device; docs/models.md, "Operating points").
Seconds of CPU; no audio is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detection.alert_figures import (  # noqa: E402
    alert_sweep,
    best_alert_on_threshold,
    on_threshold_grid,
)
from detection.decision import DecisionConfig  # noqa: E402
from detection.decision_choice import OFF_RATIO, decision_defaults  # noqa: E402
from detection.fusion import SecondStageConfig  # noqa: E402
from detection.second_stage_choice import fused_scored, run_config, saved_choice  # noqa: E402

MODEL = REPO / "detection" / "shipped" / "default"
SHAPES = ((2, 0.0), (3, 0.0), (3, 0.1), (3, 0.3), (3, 0.5), (5, 0.0), (5, 0.3))
KEYS = ("on_threshold", "f1", "precision", "recall", "false_alerts", "false_alerts_per_hour")


def operating_points(
    model_dir: Path,
    max_per_hour: float,
    shapes=SHAPES,
    only: str | None = None,
    gate: float | None = None,
) -> list[dict]:
    """For each decision shape: the best-F1 point and the best point within ``max_per_hour``;
    ``only``: the files whose name starts with it (e.g. ``real-v1/``), else every file;
    ``gate``: YAMNet's gate (default the model's; a stream more sensitive than the model's on
    threshold lowers its gate live, ``live.second_opinion``, so points below it may alert a
    little more there)."""
    scored, second, _ = saved_choice(model_dir)
    if only:
        files = np.flatnonzero([name.startswith(only) for name in scored.file_names])
        if files.size == 0:
            raise SystemExit(f"no scored file starts with {only!r}")
        keep = np.isin(scored.file_index, files)
        second = second[keep]
        scored = scored.subset(files)
    config = json.loads((model_dir / "config.json").read_text())
    weight = float(config["second_stage"]["weight"])
    gate = float(config["second_stage"]["gate"] if gate is None else gate)
    cfg, stride_s = run_config(model_dir)
    fused = fused_scored(scored, second, SecondStageConfig(weight=weight, gate=gate))
    stride = cfg.column_start_s(cfg.stride_columns(stride_s))
    threshold = float(config["threshold"])
    grid = np.union1d(on_threshold_grid(), [config["decision"]["on_threshold"]])
    out = []
    for smoothing, min_duration in shapes:
        shape = decision_defaults(threshold, smoothing=smoothing, min_duration_s=min_duration)
        base = DecisionConfig.from_model(shape, threshold)
        rows = alert_sweep(fused, base, stride, cfg.window_span_s(), grid, off_ratio=OFF_RATIO)
        quiet = [r for r in rows if r["false_alerts_per_hour"] <= max_per_hour]
        out.append(
            {
                "smoothing_windows": smoothing,
                "min_duration_s": min_duration,
                "best_f1": {k: best_alert_on_threshold(rows)[k] for k in KEYS},
                "within": {k: max(quiet, key=lambda r: r["f1"])[k] for k in KEYS}
                if quiet
                else None,
            }
        )
    return out


def _cells(point: dict | None) -> str:
    if point is None:
        return "- | - | - | -"
    return (
        f"{point['on_threshold']:.3f} | {point['f1']:.3f} | {point['recall']:.3f}"
        f" | {point['false_alerts_per_hour']:.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(MODEL), help="a model with second_stage/ scores")
    parser.add_argument("--max-per-hour", type=float, default=2.0)
    parser.add_argument("--only", metavar="PREFIX", help="the files whose name starts with it")
    parser.add_argument("--gate", type=float, help="YAMNet's gate (default: the model's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    points = operating_points(Path(args.model), args.max_per_hour, only=args.only, gate=args.gate)
    if args.json:
        print(json.dumps(points, indent=2))
        return
    limit = f"{args.max_per_hour:g}"
    print(
        "| smoothing windows | minimum duration (s) | best F1: on threshold | file F1 | recall"
        f" | false alerts / h | at most {limit} / h: on threshold | file F1 | recall"
        " | false alerts / h |"
    )
    print("|" + "---|" * 10)
    for p in points:
        print(
            f"| {p['smoothing_windows']} | {p['min_duration_s']:g} | {_cells(p['best_f1'])}"
            f" | {_cells(p['within'])} |"
        )


if __name__ == "__main__":
    main()
