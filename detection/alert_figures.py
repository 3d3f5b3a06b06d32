"""Alert figures: incidents a decision opens on scored files, and sweeps of its threshold."""

from __future__ import annotations

import math

import numpy as np

from .evaluation import Scored, confusion, rates


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
