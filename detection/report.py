"""The report of a training or evaluation run: Markdown tables, and the files written beside it."""

from __future__ import annotations

import math

from .evaluation import METRIC_KEYS, Scored, fold_means
from .report_plots import alert_sweep_png, confusion_png, pr_png


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def metrics_table(sections: dict[str, dict]) -> str:
    header = ["", *METRIC_KEYS, "tp", "fp", "tn", "fn", "n"]
    rows = [
        [name, *(m[k] for k in METRIC_KEYS), m["tp"], m["fp"], m["tn"], m["fn"], m["n"]]
        for name, m in sections.items()
    ]
    return _table(header, rows)


def _sweep_md(rows: list[dict], alerts: dict, chosen_here: bool) -> str:
    """The live operating point and a few others from the on-threshold sweep."""
    chosen = alerts.get("on_threshold")
    picks = {
        # No non-scream audio (no rate): the points nearest 0 an hour, i.e. any.
        min(rows, key=lambda r: abs((r["false_alerts_per_hour"] or 0.0) - target))["on_threshold"]
        for target in (0.5, 1, 2, 5, 10, 20)
    }
    if chosen is not None:
        picks.add(min(rows, key=lambda r: abs(r["on_threshold"] - chosen))["on_threshold"])
    shown = [r for r in rows if r["on_threshold"] in picks]
    table = _table(
        ["on threshold", "scream files alerted", "false alerts an hour", "file F1 (alerts)"],
        [
            [
                f"{r['on_threshold']:.4f}" + (" (live)" if r["on_threshold"] == chosen else ""),
                f"{r['tp']} of {r['tp'] + r['fn']}",
                r["false_alerts_per_hour"],
                r["f1"],
            ]
            for r in shown
        ],
    )
    if chosen_here:
        intro = (
            "The live decision (smoothing, minimum duration and on threshold) is chosen by F1 over"
            " files through the decision logic (a file is alerted when an incident opens in it);"
            " other points of that sweep, for choosing a sensitivity"
        )
    else:
        intro = (
            "The model's live decision at other on thresholds on this data (a file is alerted"
            " when an incident opens in it; for choosing a sensitivity, not a fair figure of the"
            " model)"
        )
    ratio = ""
    if alerts.get("on_threshold") and alerts.get("off_threshold"):
        ratio = f" (off threshold {alerts['off_threshold'] / alerts['on_threshold']:.2g} of each)"
    return f"\n{intro}{ratio}; `alert_sweep.png`, all of it in `metrics.json`:\n\n" + table


def _by_input_md(figures: dict) -> str:
    """The table of ``by_input`` figures: one row per way the held-out files were heard."""
    rows = []
    for label, row in figures.items():
        f = row["file"]
        rows.append(
            [
                label,
                row["files"],
                row["window"]["f1"],
                f["f1"],
                row.get("file_f1_fold_mean", ""),
                f["precision"],
                f["recall"],
                f["fp"],
                f["fn"],
            ]
        )
    header = [
        "input",
        "files",
        "window F1",
        "file F1",
        "file F1, fold mean",
        "file precision",
        "file recall",
        "false files",
        "missed files",
    ]
    return (
        "\nThe same figures for each input, at the same threshold: each held-out file as"
        " recorded, and as a device at each evaluation rate streams it (resampled to that rate"
        " and back).\n\n" + _table(header, rows)
    )


def build_report(
    title: str,
    scored: Scored,
    threshold: float,
    summary: dict,
    intro: list[str] | None = None,
    folds: list[dict] | None = None,
    trials: list[dict] | None = None,
    config: dict | None = None,
    alert_sweep: list[dict] | None = None,
    sweep_chosen_here: bool = True,
    by_input: dict | None = None,
) -> dict[str, bytes | str]:
    """``report.md`` plus its images, as ``{file name: content}``."""
    import json

    lab = scored.labelled
    y = scored.targets[lab] == 1
    s = scored.scores[lab]
    files: dict[str, bytes | str] = {
        "confusion_windows.png": confusion_png(summary["window"], "windows"),
        "confusion_files.png": confusion_png(summary["file"], "files"),
    }
    if y.any():
        files["pr_curve.png"] = pr_png(y, s, threshold, "precision-recall (windows)")
    md = [f"# {title}\n"]
    md += [f"{line}\n" for line in intro or []]
    md.append(f"\nOperating threshold: **{threshold:.4f}** (score >= threshold = scream).\n")
    md.append("\n## Windows and files\n\n")
    md.append(
        "A file counts as detected when any of its windows scores at or above the threshold.\n\n"
    )
    md.append(metrics_table({"windows": summary["window"], "files": summary["file"]}))
    if by_input and len(by_input) > 1:
        md.append(_by_input_md(by_input))
    alerts = summary.get("alerts")
    if alerts:
        opens_at = f" opening at {alerts['on_threshold']:.4f}" if "on_threshold" in alerts else ""
        if "smoothing_windows" in alerts:
            minimum = alerts["min_duration_s"]
            opens_at += f" (mean of {alerts['smoothing_windows']} windows, " + (
                f"at least {minimum:g} s)" if minimum else "no minimum duration)"
            )
        md.append(
            "\nThrough the live decision logic (smoothing, hysteresis, minimum duration; no level"
            f" gate){opens_at}, file by file: **{alerts['false_alerts']} false alerts** in"
            f" {alerts['non_scream_hours']:.2f} h of non-scream audio"
            f" ({alerts['false_alerts_per_hour']} an hour);"
            f" {alerts['scream_files_alerted']} of {alerts['scream_files']} scream files"
            " alerted.\n"
        )
    if alert_sweep:
        files["alert_sweep.png"] = alert_sweep_png(alert_sweep, alerts or {})
        md.append(_sweep_md(alert_sweep, alerts or {}, sweep_chosen_here))
    md.append("\n## False positives by kind of sound (windows)\n\n")
    md.append(
        _table(
            ["sub-label", "windows", "false positives", "FPR"],
            [[k, v["n"], v["fp"], v["fpr"]] for k, v in summary["fpr_by_sublabel"].items()],
        )
    )
    if folds:
        md.append("\n## Cross-validation folds (windows, at the operating threshold)\n\n")
        header = [
            "fold",
            "files",
            "groups",
            *METRIC_KEYS,
            "file F1",
            "FPR 0_0",
            "FPR 0_1",
            "FPR 0_2",
        ]
        rows = []
        for fold in folds:
            m = fold["summary"]
            rows.append(
                [
                    fold["fold"],
                    fold["n_files"],
                    fold["n_groups"],
                    *(m["window"][k] for k in METRIC_KEYS),
                    m["file"]["f1"],
                    *(m["fpr_by_sublabel"][k]["fpr"] for k in ("0_0", "0_1", "0_2")),
                ]
            )
        means = fold_means(folds)
        rows.append(
            ["mean", "", "", *(means[k] for k in METRIC_KEYS), means["file_f1"], "", "", ""]
        )
        md.append(_table(header, rows))
    if trials:
        md.append("\n## Hyper-parameter search (grouped CV mean F1)\n\n")
        keys = sorted({k for t in trials for k in t["params"]})
        rows = [[t["trial"], t["score"], *(t["params"][k] for k in keys)] for t in trials]
        md.append(_table(["trial", "mean F1", *keys], rows))
    md.append("\n## Figures\n\n")
    md.append("![confusion matrix, windows](confusion_windows.png)\n")
    md.append("![confusion matrix, files](confusion_files.png)\n")
    if "alert_sweep.png" in files:
        md.append("![live decision: scream files alerted and false alerts](alert_sweep.png)\n")
    if "pr_curve.png" in files:
        md.append("![precision-recall curve](pr_curve.png)\n")
    if config is not None:
        md.append("\n## Configuration\n\n```json\n")
        md.append(json.dumps(config, indent=2, sort_keys=True, default=str))
        md.append("\n```\n")
    files["report.md"] = "".join(md)
    return files


def write_files(folder, files: dict[str, bytes | str]) -> None:
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = folder / name
        if isinstance(content, str):
            target.write_text(content)
        else:
            target.write_bytes(content)
