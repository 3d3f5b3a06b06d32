"""Live figures from operators' verdicts: pure functions over alert rows (no database).

An ``AlertRow`` is one alert with its verdict (the label of its newest ``Review``; ``None``
while unreviewed or after the verdict was withdrawn). ``summarize`` gives, for any set of rows
(one site, one device, one model version, or all):

* ``precision``: confirmed / reviewed (``None`` with nothing reviewed);
* ``alerts_per_day`` over the period's days;
* ``false_alerts_per_device_day``: dismissed alerts / (devices x days);
* ``backlog``: alerts without a verdict;
* detection latency (the incident's onset on the capture clock, ``started_at``, to the alert
  stored, ``created``) and review latency (alert stored to its first verdict): median and p95,
  in seconds.

``daily`` gives the same counts per day, for the plots over time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

SCREAM = "1"


@dataclass(frozen=True)
class AlertRow:
    site: str
    device: str
    version: int | None
    started_at: datetime  # the incident's onset (capture clock)
    created: datetime  # when the alert was stored
    verdict: str | None = None  # newest review's label; None: no verdict
    first_verdict_at: datetime | None = None

    @property
    def confirmed(self) -> bool:
        return self.verdict == SCREAM

    @property
    def dismissed(self) -> bool:
        return bool(self.verdict) and self.verdict != SCREAM


def _quantile(values: list[float], q: float) -> float | None:
    return round(float(np.quantile(values, q)), 3) if values else None


def summarize(rows: Iterable[AlertRow], days: float, devices: int) -> dict:
    """The figures of ``rows`` over a period of ``days`` days with ``devices`` devices."""
    rows = list(rows)
    if days <= 0:
        raise ValueError(f"the period must be longer than 0 days, got {days}")
    confirmed = sum(r.confirmed for r in rows)
    dismissed = sum(r.dismissed for r in rows)
    reviewed = confirmed + dismissed
    detection = [(r.created - r.started_at).total_seconds() for r in rows]
    review = [
        (r.first_verdict_at - r.created).total_seconds()
        for r in rows
        if r.first_verdict_at is not None
    ]
    device_days = devices * days
    return {
        "alerts": len(rows),
        "reviewed": reviewed,
        "confirmed": confirmed,
        "dismissed": dismissed,
        "backlog": len(rows) - reviewed,
        "precision": round(confirmed / reviewed, 4) if reviewed else None,
        "alerts_per_day": round(len(rows) / days, 3),
        "false_alerts_per_device_day": round(dismissed / device_days, 3) if device_days else None,
        "detection_latency_s": {
            "median": _quantile(detection, 0.5),
            "p95": _quantile(detection, 0.95),
        },
        "review_latency_s": {"median": _quantile(review, 0.5), "p95": _quantile(review, 0.95)},
    }


def group(rows: Iterable[AlertRow], key: Callable[[AlertRow], object]) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def by(
    rows: Iterable[AlertRow], key: Callable[[AlertRow], object], days: float, devices: Callable
) -> dict:
    """``{group: summarize(...)}``; ``devices(group)`` is the number of devices in the group."""
    return {k: summarize(members, days, devices(k)) for k, members in group(rows, key).items()}


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def daily(rows: Iterable[AlertRow], start: date, end: date) -> list[dict]:
    """Per day from ``start`` to ``end`` (both included, by the alert's onset date, UTC):
    alerts, confirmed, dismissed, precision, median detection latency."""
    by_day = group(rows, lambda r: r.started_at.date())
    out = []
    for day in days_between(start, end):
        members = by_day.get(day, [])
        confirmed = sum(r.confirmed for r in members)
        dismissed = sum(r.dismissed for r in members)
        latency = [(r.created - r.started_at).total_seconds() for r in members]
        out.append(
            {
                "day": day.isoformat(),
                "alerts": len(members),
                "confirmed": confirmed,
                "dismissed": dismissed,
                "precision": round(confirmed / (confirmed + dismissed), 4)
                if confirmed + dismissed
                else None,
                "detection_latency_median_s": _quantile(latency, 0.5),
            }
        )
    return out
