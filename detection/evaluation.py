"""Metrics of scream scores against labels, and the report shared by ``train`` and ``evaluate``.

The metric functions are pure NumPy (no scikit-learn): confusion counts, precision / recall /
F1 / accuracy, ROC AUC (rank statistic, ties counted half), precision-recall points, average
precision, the F1-maximising threshold, false-positive rate per negative sub-label, and
file-level detection (a file is detected when any of its windows scores at or above the
threshold).

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


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall steps): the mean of the precision
    at each distinct score, weighted by the recall it adds; ``nan`` without a positive."""
    sw = sweep(y_true, scores)
    if sw.n_pos == 0:
        return float("nan")
    recall = np.concatenate([[0.0], sw.recall])
    return float(np.sum(np.diff(recall) * sw.precision))


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

    def to_npz(self) -> bytes:
        """The scores and what is known about them as a compressed ``.npz`` file's bytes."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            scores=np.asarray(self.scores, np.float32),
            targets=np.asarray(self.targets, np.int8),
            sublabels=np.asarray(self.sublabels, np.int8),
            file_index=np.asarray(self.file_index, np.int32),
            file_truth=np.asarray(self.file_truth, bool),
            file_names=np.asarray(self.file_names, dtype=str),
        )
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, path) -> Scored:
        """Read what ``to_npz`` wrote (e.g. a training run's ``out_of_fold.npz``)."""
        with np.load(path, allow_pickle=False) as data:
            missing = {"scores", "targets", "sublabels", "file_index", "file_truth"} - set(
                data.files
            )
            if missing:
                raise ValueError(f"{path}: not a scores file (lacks {sorted(missing)})")
            return cls(
                scores=data["scores"].astype(np.float64),
                targets=data["targets"].astype(np.int64),
                sublabels=data["sublabels"].astype(np.int64),
                file_index=data["file_index"].astype(np.int64),
                file_truth=data["file_truth"].astype(bool),
                file_names=[str(n) for n in data["file_names"]],
            )

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


AS_RECORDED = "as recorded"


def device_copy_name(file_name: str, rate: int) -> str:
    """The name of ``file_name`` scored as a device at ``rate`` streams it (``input_of``)."""
    return f"{file_name} @ {rate} Hz"


def input_of(file_name: str) -> str:
    """How a scored file was heard: ``"as recorded"``, or ``"16000 Hz"`` for the copy named
    ``"<file> @ 16000 Hz"`` (a held-out file as a device at that rate streams it)."""
    base, sep, rate = file_name.rpartition(" @ ")
    if sep and base and rate.endswith(" Hz") and rate[:-3].isdigit():
        return rate
    return AS_RECORDED


def by_input(scored: Scored, threshold: float, fold_of_file: np.ndarray | None = None) -> dict:
    """Window and file figures at ``threshold`` for each way the files were heard
    (``input_of``), in order of first appearance; with ``fold_of_file`` (the fold of every
    scored file) also each input's mean file F1 over folds.

    Cross-validation with ``--eval-rates`` scores every held-out file as recorded and as a
    device at each rate hears it; the threshold is chosen over all of them together. This
    splits the figures again: "as recorded" is the seed's protocol, the rates are what devices
    at those rates get.
    """
    inputs: dict[str, list[int]] = {}
    for index, name in enumerate(scored.file_names):
        inputs.setdefault(input_of(name), []).append(index)
    out = {}
    for label, files in inputs.items():
        files = np.asarray(files, dtype=np.int64)
        summary = summarize(scored.subset(files), threshold)
        row = {"files": int(files.size), "window": summary["window"], "file": summary["file"]}
        if fold_of_file is not None:
            folds = np.asarray(fold_of_file)[files]
            parts = [scored.subset(files[folds == fold]) for fold in np.unique(folds)]
            row["file_f1_fold_mean"] = float(
                np.mean(
                    [
                        file_level(p.file_index, p.scores, p.file_truth, threshold)["f1"]
                        for p in parts
                    ]
                )
            )
        out[label] = row
    return out


def _files_in_order(scored: Scored):
    """``(file, window indices in scoring order)`` for every file that has windows."""
    order = np.argsort(scored.file_index, kind="stable")
    files, starts = np.unique(scored.file_index[order], return_index=True)
    for f, begin, end in zip(files, starts, [*starts[1:], order.size], strict=True):
        yield int(f), order[begin:end]


def openings(probs: np.ndarray, decision, stride_s: float, span_s: float) -> int:
    """How many incidents the live decision logic opens on one file's window probabilities
    (window ``i`` ending at ``span_s + i * stride_s``), fed to a fresh ``IncidentTracker``."""
    from .decision import OPENED, IncidentTracker

    tracker = IncidentTracker(decision, window_span_s=span_s)
    return sum(
        event.kind == OPENED
        for i, prob in enumerate(probs)
        for event in tracker.update(span_s + i * stride_s, float(prob))
    )


def _outcomes(scored: Scored, files, decision, stride_s, span_s, peaks=None) -> list[tuple]:
    """``(file holds a scream, incidents opened)`` for each of ``files`` (``_files_in_order``).
    With ``peaks`` (``smoothed_peaks``), a file whose peak is under the on threshold is not
    fed to the tracker: it cannot open anything (margin for rounding)."""
    return [
        (
            bool(scored.file_truth[f]),
            0
            if peaks is not None and peaks[f] < decision.on_threshold - 1e-9
            else openings(scored.scores[rows], decision, stride_s, span_s),
        )
        for f, rows in files
    ]


def _non_scream_hours(scored: Scored, files, stride_s: float, span_s: float) -> float:
    """Hours of audio the windows of the non-scream files cover."""
    seconds = sum(
        span_s + (rows.size - 1) * stride_s for f, rows in files if not scored.file_truth[f]
    )
    return seconds / 3600


def _per_hour(false_alerts: int, hours: float) -> float | None:
    return round(false_alerts / hours, 3) if hours else None


def alert_figures(scored: Scored, decision, stride_s: float, span_s: float) -> dict:
    """What the live decision logic makes of these scores, file by file.

    Each file's windows (in the order scored, window ``i`` ending at ``span_s + i * stride_s``)
    are fed to a fresh ``IncidentTracker`` with ``decision`` (a ``DecisionConfig``, whose
    thresholds, smoothing and minimum duration the figures name). Every incident opened in a
    file without a scream is a false alert; its hours are the audio its windows cover. Scream
    files count as alerted when any incident opens in them. The level gate is not applied (no
    audio levels here), so quiet files are scored as if loud.
    """
    files = list(_files_in_order(scored))
    outcomes = _outcomes(scored, files, decision, stride_s, span_s)
    false_alerts = sum(opened for scream, opened in outcomes if not scream)
    hours = _non_scream_hours(scored, files, stride_s, span_s)
    return {
        "on_threshold": decision.on_threshold,
        "off_threshold": decision.off_threshold,
        "smoothing_windows": decision.smoothing_windows,
        "min_duration_s": decision.min_duration_s,
        "false_alerts": int(false_alerts),
        "non_scream_hours": round(hours, 4),
        "false_alerts_per_hour": _per_hour(false_alerts, hours),
        "scream_files": sum(scream for scream, _ in outcomes),
        "scream_files_alerted": sum(scream and opened > 0 for scream, opened in outcomes),
    }


def smoothed_peaks(scored: Scored, smoothing_windows: int) -> dict[int, float]:
    """Each file's highest moving average of ``smoothing_windows`` probabilities (fewer at
    the start of a file, as ``IncidentTracker`` averages): no incident opens in a file whose
    peak is under the on threshold."""
    k = int(smoothing_windows)
    peaks = {}
    for f, rows in _files_in_order(scored):
        probs = np.asarray(scored.scores[rows], np.float64)
        sums = np.cumsum(np.concatenate([[0.0], probs]))
        i = np.arange(1, probs.size + 1)
        lo = np.maximum(0, i - k)
        peaks[f] = float(np.max((sums[i] - sums[lo]) / (i - lo)))
    return peaks


def alert_sweep(
    scored: Scored,
    decision,
    stride_s: float,
    span_s: float,
    on_thresholds,
    off_ratio: float = 0.7,
) -> list[dict]:
    """Alert-level figures at each on threshold (the off threshold ``off_ratio`` of it).

    A file is *alerted* when the decision logic opens any incident in it; F1, precision and
    recall are over files (a non-scream file with an alert is a false positive), and every
    false alert also counts towards ``false_alerts``. The operating point of the live path,
    chosen the way it decides, not by single windows."""
    from dataclasses import replace

    peaks = smoothed_peaks(scored, decision.smoothing_windows)
    files = list(_files_in_order(scored))
    hours = _non_scream_hours(scored, files, stride_s, span_s)
    out = []
    for on in on_thresholds:
        on = float(on)
        cfg = replace(decision, on_threshold=on, off_threshold=off_ratio * on)
        outcomes = _outcomes(scored, files, cfg, stride_s, span_s, peaks)
        counts = confusion(
            np.array([scream for scream, _ in outcomes], dtype=bool),
            np.array([opened > 0 for _, opened in outcomes], dtype=bool),
        )
        false_alerts = sum(opened for scream, opened in outcomes if not scream)
        out.append(
            {
                "on_threshold": on,
                **counts,
                **rates(counts),
                "false_alerts": int(false_alerts),
                "false_alerts_per_hour": _per_hour(false_alerts, hours),
            }
        )
    return out


def on_threshold_grid(low: float = 0.5, high: float = 0.9999, step_logit: float = 0.05):
    """Candidate on thresholds, evenly spaced in logit (dense where the scores crowd at 1)."""
    lo, hi = math.log(low / (1 - low)), math.log(high / (1 - high))
    n = int(round((hi - lo) / step_logit)) + 1
    return 1.0 / (1.0 + np.exp(-np.linspace(lo, hi, n)))


def best_alert_on_threshold(sweep_rows: list[dict]) -> dict:
    """The sweep row with the highest file F1 through the decision logic; ties -> the
    higher on threshold (fewer false alerts for the same files)."""
    if not sweep_rows:
        raise ValueError("no on thresholds swept")
    return max(sweep_rows, key=lambda r: (r["f1"], r["on_threshold"]))  # F1 is 0 if undefined


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


def alert_sweep_png(rows: list[dict], alerts: dict) -> bytes:
    """Scream files alerted against false alerts an hour, over the on thresholds swept."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fa = np.array([r["false_alerts_per_hour"] or 0.0 for r in rows])
    recall = np.array([r["recall"] for r in rows])
    fig = Figure(figsize=(4.8, 3.4))
    ax = fig.subplots()
    ax.plot(fa, recall, ".-", markersize=3)
    if "on_threshold" in alerts:
        near = min(rows, key=lambda r: abs(r["on_threshold"] - alerts["on_threshold"]))
        at = (near["false_alerts_per_hour"] or 0.0, near["recall"])
        ax.plot([at[0]], [at[1]], "o", color="crimson")
        ax.annotate(
            f"live {alerts['on_threshold']:.3f}",
            at,
            textcoords="offset points",
            xytext=(8, -12),
        )
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false alerts an hour (out of fold)")
    ax.set_ylabel("scream files alerted (share)")
    ax.set_title("live decision: on-threshold sweep")
    ax.grid(alpha=0.3)
    return _png(fig)


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
