"""The feedback export from the database: every reviewed alert whose verdict is in force.

An alert's verdict is its newest Review (``alerts.reviews``); an alert whose newest review
withdrew the verdict is not reviewed. ``export_feedback`` writes the pack
(``detection.feedback_set``) and returns what it wrote and the alerts it could not.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from alerts.models import Alert, Review
from alerts.reviews import latest_reviews, review_user
from detection.feedback_set import ExportItem, ExportResult, export_items


def parse_since(raw: str | None) -> datetime | None:
    """A ``since`` bound: an ISO date (its midnight, in the current time zone) or an ISO date
    and time; ``ValueError`` for anything else."""
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        day = parse_date(raw)
        if day is None:
            raise ValueError(f"since: an ISO date or date and time, got {raw!r}")
        value = datetime.combine(day, datetime.min.time())
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _snippet_path(alert: Alert) -> Path | None:
    if not alert.snippet:
        return None
    return Path(settings.MEDIA_ROOT) / alert.snippet.name


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def reviewed_items(site: str | None = None, since: datetime | None = None) -> list[ExportItem]:
    """An ``ExportItem`` for every alert whose newest review is a label (``1``, ``0_0``,
    ``0_1``, ``0_2``), optionally only of ``site`` (its name) and with a verdict at or after
    ``since``."""
    alerts = Alert.objects.exclude(status=Alert.NEW)
    if site:
        alerts = alerts.filter(site_name=site)
    alerts = list(alerts.order_by("id"))
    latest = latest_reviews([a.pk for a in alerts])
    items = []
    for alert in alerts:
        review = latest.get(alert.pk)
        if review is None or review.label == Review.WITHDRAWN:
            continue
        if since is not None and review.created < since:
            continue
        start = alert.snippet_started_at or alert.started_at
        items.append(
            ExportItem(
                alert_id=alert.pk,
                site=alert.site_name,
                device=alert.device_name,
                model_version=alert.model_version,
                reviewer=review_user(review),
                verdict=review.label,
                verdict_time=review.created,
                snippet_path=_snippet_path(alert),
                incident_start_s=_seconds(alert.started_at, start) or 0.0,
                incident_end_s=_seconds(alert.ended_at, start),
            )
        )
    return items


def export_feedback(
    out: str | os.PathLike, site: str | None = None, since: datetime | None = None
) -> ExportResult:
    """Write the feedback pack of the reviewed alerts to ``out``."""
    return export_items(reviewed_items(site, since), out)


def export_archive(site: str | None = None, since: datetime | None = None):
    """The export as a zip file (an open temporary file, at its start) and its result."""
    with tempfile.TemporaryDirectory(prefix="feedback-") as folder:
        result = export_feedback(folder, site, since)
        archive = tempfile.TemporaryFile(suffix=".zip")
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    bundle.write(path, path.relative_to(folder).as_posix())
            if result.problems:
                bundle.writestr("problems.txt", problems_text(result))
    archive.seek(0)
    return archive, result


def problems_text(result: ExportResult) -> str:
    return "".join(f"alert {alert_id}: {why}\n" for alert_id, why in result.problems)
