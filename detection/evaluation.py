"""Metrics of scream scores against labels, and the report shared by ``train`` and ``evaluate``.

The metric functions are pure NumPy (no scikit-learn): confusion counts, precision / recall /
F1 / accuracy, ROC AUC (rank statistic, ties counted half), precision-recall points, the
F1-maximising threshold, false-positive rate per negative sub-label, and file-level detection
(a file is detected when any of its windows scores at or above the threshold).

A window is predicted a scream when its score is ``>= threshold``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

SUBLABELS = ("1", "0_0", "0_1", "0_2")  # index i <-> dataset.LABELS[i]


# --------------------------------------------------------------------------- pure metrics


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """Counts ``tp``, ``fp``, ``tn``, ``fn`` of binary truths and predictions."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    if t.shape != p.shape:
        raise ValueError(f"shapes differ: {t.shape} vs {p.shape}")
    return {
        "tp": int(np.sum(t & p)),
        "fp": int(np.sum(~t & p)),
        "tn": int(np.sum(~t & ~p)),
        "fn": int(np.sum(t & ~p)),
    }


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else 0.0


def rates(counts: dict[str, int]) -> dict[str, float]:
    """Precision, recall, F1, accuracy of confusion counts (0 where undefined)."""
    tp, fp, tn, fn = counts["tp"], counts["fp"], counts["tn"], counts["fn"]
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
    }


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (probability a scream outscores a non-scream; ties half).

    ``nan`` when only one class is present.
    """
    t = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.shape[0], dtype=np.float64)
    # average ranks (1-based) over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@dataclass
class Sweep:
    """Counts at every distinct score used as threshold (descending thresholds)."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_pos: int
    n_neg: int

    @property
    def precision(self) -> np.ndarray:
        return self.tp / np.maximum(self.tp + self.fp, 1)

    @property
    def recall(self) -> np.ndarray:
        return self.tp / max(self.n_pos, 1)

    @property
    def f1(self) -> np.ndarray:
        fn = self.n_pos - self.tp
        return 2 * self.tp / np.maximum(2 * self.tp + self.fp + fn, 1)


def sweep(y_true: np.ndarray, scores: np.ndarray) -> Sweep:
    t = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, t_sorted = s[order], t[order]
    tp_cum = np.cumsum(t_sorted)
    fp_cum = np.cumsum(~t_sorted)
    # last index of each distinct score (scores >= that value are predicted positive)
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.shape[0] - 1] if s.size else []
    last = np.asarray(last, dtype=np.int64)
    return Sweep(
        thresholds=s_sorted[last] if s.size else np.zeros(0),
        tp=tp_cum[last].astype(np.float64) if s.size else np.zeros(0),
        fp=fp_cum[last].astype(np.float64) if s.size else np.zeros(0),
        n_pos=int(t.sum()),
        n_neg=int((~t).sum()),
    )


def pr_curve(y_true: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Precision and recall at each distinct score taken as threshold (descending)."""
    sw = sweep(y_true, scores)
    return {"thresholds": sw.thresholds, "precision": sw.precision, "recall": sw.recall}


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """``(threshold, f1)`` maximising F1 over the distinct scores; ties -> higher threshold.

    With no scream at all the threshold is the highest score (nothing predicted above it
    but the top) and F1 is 0.
    """
    sw = sweep(y_true, scores)
    if sw.thresholds.size == 0:
        raise ValueError("no scores to choose a threshold from")
    f1 = sw.f1
    best = int(np.argmax(f1))  # first maximum = highest threshold (thresholds descend)
    return float(sw.thresholds[best]), float(f1[best])


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Confusion counts, rates and ROC AUC of scores at ``threshold``."""
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    counts = confusion(y_true, scores >= threshold)
    out = {**counts, **rates(counts), "roc_auc": roc_auc(y_true, scores), "n": int(y_true.size)}
    out["n_scream"] = int(y_true.sum())
    return out


def fpr_per_sublabel(sublabels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """False-positive rate of each negative sub-label (``sublabels`` index ``SUBLABELS``)."""
    sublabels = np.asarray(sublabels)
    scores = np.asarray(scores, dtype=np.float64)
    out = {}
    for index, name in enumerate(SUBLABELS):
        if name == "1":
            continue
        mask = sublabels == index
        n = int(mask.sum())
        fp = int(np.sum(scores[mask] >= threshold))
        out[name] = {"n": n, "fp": fp, "fpr": _ratio(fp, n) if n else float("nan")}
    return out


def file_top_scores(file_index: np.ndarray, scores: np.ndarray, n_files: int) -> np.ndarray:
    """Each file's highest window score (-inf for a file without windows)."""
    top = np.full(n_files, -np.inf)
    np.maximum.at(top, np.asarray(file_index, dtype=np.int64), np.asarray(scores, np.float64))
    return top


def file_level(
    file_index: np.ndarray, scores: np.ndarray, file_truth: np.ndarray, threshold: float
) -> dict:
    """File-level detection: a file is detected when any of its windows scores >= threshold.

    ``file_index[i]`` is the file of window ``i``; ``file_truth[f]`` whether file ``f`` holds
    a scream. Files without any window count as not detected.
    """
    file_truth = np.asarray(file_truth).astype(bool)
    top = file_top_scores(file_index, scores, file_truth.shape[0])
    detected = top >= threshold
    counts = confusion(file_truth, detected)
    finite_top = np.where(np.isfinite(top), top, 0.0)
    return {
        **counts,
        **rates(counts),
        "roc_auc": roc_auc(file_truth, finite_top),
        "n": int(file_truth.size),
        "n_scream": int(file_truth.sum()),
    }


@dataclass
class Scored:
    """Scores of every window of a set of files, with what is known about each window."""

    scores: np.ndarray  # (N,) probabilities
    targets: np.ndarray  # (N,) 1 / 0 / -1 (ignored)
    sublabels: np.ndarray  # (N,) index into SUBLABELS, -1 when ignored
    file_index: np.ndarray  # (N,) file of each window
    file_truth: np.ndarray  # (n_files,) file holds a scream
    file_names: list[str]

    @property
    def labelled(self) -> np.ndarray:
        return self.targets >= 0

    def subset(self, files: np.ndarray) -> Scored:
        """The windows of the given files (indices into ``file_names``), renumbered."""
        files = np.asarray(files, dtype=np.int64)
        remap = np.full(len(self.file_names), -1, dtype=np.int64)
        remap[files] = np.arange(files.size)
        keep = remap[self.file_index] >= 0
        return Scored(
            scores=self.scores[keep],
            targets=self.targets[keep],
            sublabels=self.sublabels[keep],
            file_index=remap[self.file_index[keep]],
            file_truth=self.file_truth[files],
            file_names=[self.file_names[i] for i in files],
        )


def summarize(scored: Scored, threshold: float) -> dict:
    """Window-level, file-level and per-sub-label figures at ``threshold``."""
    lab = scored.labelled
    return {
        "threshold": float(threshold),
        "window": binary_metrics(scored.targets[lab] == 1, scored.scores[lab], threshold),
        "file": file_level(scored.file_index, scored.scores, scored.file_truth, threshold),
        "fpr_by_sublabel": fpr_per_sublabel(scored.sublabels[lab], scored.scores[lab], threshold),
    }


def alert_figures(scored: Scored, decision, stride_s: float, span_s: float) -> dict:
    """What the live decision logic makes of these scores, file by file.

    Each file's windows (in the order scored, window ``i`` ending at ``span_s + i * stride_s``)
    are fed to a fresh ``IncidentTracker`` with ``decision`` (a ``DecisionConfig``). Every
    incident opened in a file without a scream is a false alert; its hours are the audio its
    windows cover. Scream files count as alerted when any incident opens in them. The level
    gate is not applied (no audio levels here), so quiet files are scored as if loud.
    """
    from .decision import OPENED, IncidentTracker

    order = np.argsort(scored.file_index, kind="stable")
    files, starts = np.unique(scored.file_index[order], return_index=True)
    false_alerts, negative_s, alerted = 0, 0.0, 0
    for f, begin, end in zip(files, starts, [*starts[1:], order.size], strict=True):
        probs = scored.scores[order[begin:end]]
        tracker = IncidentTracker(decision, window_span_s=span_s)
        opened = sum(
            event.kind == OPENED
            for i, prob in enumerate(probs)
            for event in tracker.update(span_s + i * stride_s, float(prob))
        )
        if scored.file_truth[f]:
            alerted += opened > 0
        else:
            false_alerts += opened
            negative_s += span_s + (probs.size - 1) * stride_s
    hours = negative_s / 3600
    return {
        "false_alerts": int(false_alerts),
        "non_scream_hours": round(hours, 4),
        "false_alerts_per_hour": round(false_alerts / hours, 3) if hours else None,
        "scream_files": int(np.sum(scored.file_truth[files])),
        "scream_files_alerted": int(alerted),
    }


# --------------------------------------------------------------------------- report


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def confusion_png(counts: dict[str, int], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    matrix = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    fig = Figure(figsize=(3.6, 3.2))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=colour)
    ax.set_xticks([0, 1], ["not scream", "scream"])
    ax.set_yticks([0, 1], ["not scream", "scream"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("labelled")
    ax.set_title(title)
    return _png(fig)


def pr_png(y_true: np.ndarray, scores: np.ndarray, threshold: float, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    curve = pr_curve(y_true, scores)
    fig = Figure(figsize=(4.2, 3.6))
    ax = fig.subplots()
    ax.plot(curve["recall"], curve["precision"], lw=1.5)
    at = binary_metrics(y_true, scores, threshold)
    ax.plot([at["recall"]], [at["precision"]], "o", color="C3", label=f"threshold {threshold:.3f}")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return _png(fig)


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


METRIC_KEYS = ("f1", "precision", "recall", "accuracy", "roc_auc")


def metrics_table(sections: dict[str, dict]) -> str:
    header = ["", *METRIC_KEYS, "tp", "fp", "tn", "fn", "n"]
    rows = [
        [name, *(m[k] for k in METRIC_KEYS), m["tp"], m["fp"], m["tn"], m["fn"], m["n"]]
        for name, m in sections.items()
    ]
    return _table(header, rows)


def build_report(
    title: str,
    scored: Scored,
    threshold: float,
    summary: dict,
    intro: list[str] | None = None,
    folds: list[dict] | None = None,
    trials: list[dict] | None = None,
    config: dict | None = None,
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
    alerts = summary.get("alerts")
    if alerts:
        md.append(
            "\nThrough the live decision logic (smoothing, hysteresis, minimum duration; no level"
            f" gate), file by file: **{alerts['false_alerts']} false alerts** in"
            f" {alerts['non_scream_hours']:.2f} h of non-scream audio"
            f" ({alerts['false_alerts_per_hour']} an hour);"
            f" {alerts['scream_files_alerted']} of {alerts['scream_files']} scream files"
            " alerted.\n"
        )
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
    if "pr_curve.png" in files:
        md.append("![precision-recall curve](pr_curve.png)\n")
    if config is not None:
        md.append("\n## Configuration\n\n```json\n")
        md.append(json.dumps(config, indent=2, sort_keys=True, default=str))
        md.append("\n```\n")
    files["report.md"] = "".join(md)
    return files


def fold_means(folds: list[dict]) -> dict[str, float]:
    """Mean window metrics (and file F1) over folds, ignoring undefined values."""
    out = {}
    for key in METRIC_KEYS:
        values = [f["summary"]["window"][key] for f in folds]
        values = [v for v in values if not math.isnan(v)]
        out[key] = float(np.mean(values)) if values else float("nan")
    out["file_f1"] = float(np.mean([f["summary"]["file"]["f1"] for f in folds]))
    return out


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
