"""Alert figures: incidents a decision opens on scored files, and sweeps of its threshold."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .decision import OPENED, IncidentTracker
from .evaluation import Scored, confusion, rates


def _files_in_order(scored: Scored):
    """``(file, window indices in scoring order)`` for every file that has windows."""
    order = np.argsort(scored.file_index, kind="stable")
    files, starts = np.unique(scored.file_index[order], return_index=True)
    for f, begin, end in zip(files, starts, [*starts[1:], order.size], strict=True):
        yield int(f), order[begin:end]


def openings(
    probs: np.ndarray, decision, stride_s: float, span_s: float, smoothed: np.ndarray | None = None
) -> int:
    """How many incidents the live decision logic opens on one file's window probabilities
    (window ``i`` ending at ``span_s + i * stride_s``), fed to a fresh ``IncidentTracker``.

    Windows that cannot change the count are skipped, and the tracker's smoothing history is
    seeded with the ones before the next window fed (``IncidentTracker.seed_history``): while
    the tracker is not active, the windows before the next one whose smoothed score reaches the
    on threshold; while an open incident is active, those before the last one at or above the
    off threshold in a row. The count is the one feeding every window gives (tested); a sweep
    over thresholds then feeds a file's few windows where its state changes. ``smoothed``: the
    file's ``moving_average`` at the decision's smoothing, when the caller has it already."""
    probs = np.asarray(probs, dtype=np.float64)
    k = int(decision.smoothing_windows)
    if smoothed is None:
        smoothed = moving_average(probs, k)
    # the tracker's own mean may round differently: margins keep every window that may count
    hits = np.flatnonzero(smoothed >= decision.on_threshold - 1e-9)
    lows = np.flatnonzero(smoothed < decision.off_threshold + 1e-9)
    tracker = IncidentTracker(decision, window_span_s=span_s)
    opened, i = 0, 0
    while i < probs.size:
        if not tracker.is_active:
            at = int(np.searchsorted(hits, i))
            if at == hits.size:  # nothing left that could open an incident
                break
            skip_to = int(hits[at])
        elif tracker.is_open:  # it stays open and active up to the window before the next low
            at = int(np.searchsorted(lows, i))
            skip_to = (int(lows[at]) if at < lows.size else probs.size) - 1
        else:
            skip_to = i
        if skip_to > i:
            i = skip_to
            tracker.seed_history(probs[max(0, i - k + 1) : i])
        opened += sum(
            event.kind == OPENED for event in tracker.update(span_s + i * stride_s, probs[i])
        )
        i += 1
    return opened


def _outcomes(scored: Scored, files, decision, stride_s, span_s) -> list[tuple]:
    """``(file holds a scream, incidents opened)`` for each of ``files`` (``_files_in_order``)."""
    return [
        (bool(scored.file_truth[f]), openings(scored.scores[rows], decision, stride_s, span_s))
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


def moving_average(probs: np.ndarray, smoothing_windows: int) -> np.ndarray:
    """The mean of each window's probability and the ``smoothing_windows - 1`` before it
    (fewer at the start of a file), as ``IncidentTracker`` smooths."""
    k = int(smoothing_windows)
    probs = np.asarray(probs, np.float64)
    sums = np.cumsum(np.concatenate([[0.0], probs]))
    i = np.arange(1, probs.size + 1)
    lo = np.maximum(0, i - k)
    return (sums[i] - sums[lo]) / (i - lo)


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
    files = list(_files_in_order(scored))
    hours = _non_scream_hours(scored, files, stride_s, span_s)
    truth = np.array([bool(scored.file_truth[f]) for f, _ in files], dtype=bool)
    probs = [np.asarray(scored.scores[rows], np.float64) for _, rows in files]
    smoothed = [moving_average(p, decision.smoothing_windows) for p in probs]
    # a file whose peak is under an on threshold opens nothing there (margin for rounding)
    peaks = np.array([s.max() if s.size else -np.inf for s in smoothed])
    out = []
    for on in on_thresholds:
        on = float(on)
        cfg = replace(decision, on_threshold=on, off_threshold=off_ratio * on)
        opened = np.zeros(len(files), dtype=np.int64)
        for j in np.flatnonzero(peaks >= on - 1e-9):
            opened[j] = openings(probs[j], cfg, stride_s, span_s, smoothed[j])
        counts = confusion(truth, opened > 0)
        false_alerts = int(opened[~truth].sum())
        out.append(
            {
                "on_threshold": on,
                **counts,
                **rates(counts),
                "false_alerts": false_alerts,
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
