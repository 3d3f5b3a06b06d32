"""The alert as a plain dict: what the ``alerts`` group broadcasts and dashboards receive."""

from __future__ import annotations

from datetime import datetime

from .models import Alert


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def serialize_alert(alert: Alert) -> dict:
    """JSON- and msgpack-safe dict of everything a dashboard shows about an alert."""
    return {
        "id": alert.pk,
        "device": {"id": alert.device_id, "name": alert.device_name},
        "site": alert.site_name,
        "location": alert.location_name,
        "latitude": alert.latitude,
        "longitude": alert.longitude,
        "x": alert.location_x,
        "y": alert.location_y,
        "started_at": _iso(alert.started_at),
        "ended_at": _iso(alert.ended_at),
        "open": alert.ended_at is None,
        "end_reason": alert.end_reason,
        "time_source": alert.time_source,
        "peak_score": alert.peak_score,
        "mean_score": alert.mean_score,
        "score_curve": [[float(t), float(p)] for t, p in alert.score_curve],
        "model_version": alert.model_version,
        "model_number": alert.model_number,
        "status": alert.status,
        "snippet_url": alert.snippet.url if alert.snippet else None,
        "snippet_started_at": _iso(alert.snippet_started_at),
        "spectrogram_url": alert.spectrogram.url if alert.spectrogram else None,
        "created": _iso(alert.created),
        "updated": _iso(alert.updated),
    }
