"""The pictures of a training or evaluation report: confusion matrix, PR curve, alert sweep."""

from __future__ import annotations

import io

import numpy as np

from .evaluation import binary_metrics, pr_curve


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
