"""The models page's plots over time: alerts per day by verdict, and precision per day."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402 (after the backend is chosen)


def daily_png(daily: list[dict], title: str = "") -> bytes:
    """Stacked bars (confirmed, dismissed, no verdict) per day and precision on a second axis."""
    days = [row["day"][5:] for row in daily]
    confirmed = [row["confirmed"] for row in daily]
    dismissed = [row["dismissed"] for row in daily]
    open_ = [row["alerts"] - row["confirmed"] - row["dismissed"] for row in daily]
    x = range(len(days))
    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    ax.bar(x, confirmed, color="#c0392b", label="confirmed")
    ax.bar(x, dismissed, bottom=confirmed, color="#7f8c8d", label="dismissed")
    bottom = [c + d for c, d in zip(confirmed, dismissed, strict=True)]
    ax.bar(x, open_, bottom=bottom, color="#f1c40f", label="no verdict")
    ax.set_ylabel("alerts per day")
    step = max(1, len(days) // 10)
    ax.set_xticks(list(x)[::step], days[::step])
    precision = [
        (i, row["precision"]) for i, row in enumerate(daily) if row["precision"] is not None
    ]
    right = ax.twinx()
    if precision:
        right.plot([i for i, _ in precision], [p for _, p in precision], "o-", color="#2c3e50")
    right.set_ylim(0, 1.05)
    right.set_ylabel("precision")
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()
