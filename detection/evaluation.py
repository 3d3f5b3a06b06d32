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

METRIC_KEYS = ("f1", "precision", "recall", "accuracy", "roc_auc")
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


def fold_means(folds: list[dict]) -> dict[str, float]:
    """Mean window metrics (and file F1) over folds, ignoring undefined values."""
    out = {}
    for key in METRIC_KEYS:
        values = [f["summary"]["window"][key] for f in folds]
        values = [v for v in values if not math.isnan(v)]
        out[key] = float(np.mean(values)) if values else float("nan")
    out["file_f1"] = float(np.mean([f["summary"]["file"]["f1"] for f in folds]))
    return out
