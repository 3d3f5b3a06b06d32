"""The alert picture: log-mel spectrogram of the snippet with the score curve drawn under it.

Pure (NumPy + matplotlib's Agg canvas, no pyplot state), so it is safe in worker threads. The
spectrogram comes from ``detection.features`` — the same front end the model sees.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from detection.features import FeatureConfig, file_columns


def active_feature_config(model_dir) -> tuple[FeatureConfig, float | None]:
    """Feature parameters and on-threshold of the active model (defaults if none is there)."""
    from detection.artifacts import ArtifactError, feature_config, read_model_config

    try:
        config = read_model_config(model_dir)
    except ArtifactError:
        return FeatureConfig(), None
    decision = config.get("decision") or {}
    return feature_config(config), float(decision.get("on_threshold", config["threshold"]))


def render_png(
    audio: np.ndarray,
    rate: int,
    score_curve: Sequence[Sequence[float]],
    cfg: FeatureConfig,
    threshold: float | None = None,
    title: str = "",
) -> bytes:
    """PNG bytes: spectrogram (top) and score curve (bottom) on one time axis from 0 s."""
    duration = max(len(audio) / rate, 1e-3)
    columns = file_columns(np.asarray(audio, dtype=np.float32), rate, cfg)

    figure = Figure(figsize=(8, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    # Fixed margins: a layout engine would double the drawing time.
    spec_ax, curve_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    figure.subplots_adjust(left=0.08, right=0.99, top=0.92, bottom=0.14, hspace=0.08)
    if columns.shape[1]:
        spec_ax.imshow(
            columns,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0.0, duration, 0, cfg.n_mels),
            interpolation="nearest",
        )
    spec_ax.set_ylabel("mel band")
    if title:
        spec_ax.set_title(title, fontsize=9)

    if len(score_curve):
        points = np.asarray(score_curve, dtype=np.float64)
        curve_ax.plot(points[:, 0], points[:, 1], color="tab:red", linewidth=1.5)
        curve_ax.fill_between(points[:, 0], points[:, 1], color="tab:red", alpha=0.2)
    if threshold is not None:
        curve_ax.axhline(threshold, color="gray", linestyle="--", linewidth=0.8)
    curve_ax.set_ylim(0.0, 1.0)
    curve_ax.set_xlim(0.0, duration)
    curve_ax.set_ylabel("score")
    curve_ax.set_xlabel("seconds from snippet start (score at each window's end)")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
