"""The review queue as CSV: one row per alert, with its verdict in force, for the same filters
as the page (``alerts.api.filter_alerts``)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from devices.local_time import site_zones

from .models import Review
from .reviews import latest_reviews, review_user

LABELS = dict(Review.LABELS)
CHUNK = 500
COLUMNS = [
    "id",
    "started_at",
    "started_local",
    "time_zone",
    "ended_at",
    "site",
    "location",
    "device",
    "peak_score",
    "mean_score",
    "status",
    "reviewer",
    "label",
    "reason",
    "note",
    "reviewed_at",
]


class _Line:
    """A file-like object that hands back what the csv writer writes (for streaming)."""

    def write(self, text: str) -> str:
        return text


def _iso(value) -> str:
    return value.isoformat() if value else ""


def alert_row(alert, review: Review | None, zone: str) -> list:
    """``started_at`` and the other instants ISO 8601 with offset; ``started_local`` the same
    instant on the site's clock (``time_zone``), as the pages show it."""
    verdict = review if review is not None and review.label != Review.WITHDRAWN else None
    return [
        alert.pk,
        _iso(alert.started_at),
        alert.started_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z"),
        zone,
        _iso(alert.ended_at),
        alert.site_name,
        alert.location_name,
        alert.device_name,
        f"{alert.peak_score:.3f}",
        f"{alert.mean_score:.3f}",
        alert.status,
        review_user(verdict) if verdict else "",
        verdict.label if verdict else "",
        LABELS.get(verdict.label, "") if verdict else "",
        verdict.note if verdict else "",
        _iso(verdict.created) if verdict else "",
    ]


def csv_lines(alerts: Iterable) -> Iterator[str]:
    """The header, then one line per alert (their reviews fetched a chunk at a time)."""
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    chunk: list = []
    for alert in alerts:
        chunk.append(alert)
        if len(chunk) == CHUNK:
            yield from _chunk_lines(writer, chunk)
            chunk = []
    yield from _chunk_lines(writer, chunk)


def _chunk_lines(writer, chunk: list) -> Iterator[str]:
    reviews = latest_reviews([a.pk for a in chunk])
    zones = site_zones(a.site_name for a in chunk)
    for alert in chunk:
        yield writer.writerow(alert_row(alert, reviews.get(alert.pk), zones[alert.site_name]))
