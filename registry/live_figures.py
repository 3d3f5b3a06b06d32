"""The figures of ``registry.figures`` from the database, for the models page and the API.

``live_figures`` reads the alerts of the last ``days`` days (by onset) of one site, one device
and/or one model version, each with its verdict (the newest review's label) and its first
verdict's time, and summarizes them overall, per site, per device, per version and per day.
Device-days count the enabled devices of the scope (the filtered site or device, else all)
over the whole period.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from alerts.models import Alert, Review
from devices.models import Device

from . import figures
from .figures import AlertRow

MAX_DAYS = 366


def alert_rows(since, until, site=None, device=None, version=None) -> list[AlertRow]:
    alerts = Alert.objects.filter(started_at__gte=since, started_at__lt=until)
    if site is not None:
        alerts = alerts.filter(device__location__site_id=site)
    if device is not None:
        alerts = alerts.filter(device_id=device)
    if version is not None:
        alerts = alerts.filter(model_number=version)
    newest = Review.objects.filter(alert=OuterRef("pk")).order_by("-created", "-id")
    first = (
        Review.objects.filter(alert=OuterRef("pk"))
        .exclude(label=Review.WITHDRAWN)
        .order_by("created", "id")
    )
    alerts = alerts.annotate(
        verdict=Subquery(newest.values("label")[:1]),
        first_verdict_at=Subquery(first.values("created")[:1]),
    ).values_list(
        "site_name",
        "device_name",
        "model_number",
        "started_at",
        "created",
        "verdict",
        "first_verdict_at",
    )
    return [
        AlertRow(s, d, v, started, created, verdict or None, first_at)
        for s, d, v, started, created, verdict, first_at in alerts
    ]


def live_figures(days: int = 30, site=None, device=None, version=None, now=None) -> dict:
    days = max(1, min(int(days), MAX_DAYS))
    until = now or timezone.now()
    since = until - timedelta(days=days)
    rows = alert_rows(since, until, site, device, version)
    devices = Device.objects.filter(enabled=True)
    if site is not None:
        devices = devices.filter(location__site_id=site)
    if device is not None:
        devices = devices.filter(pk=device)
    per_site: dict[str, int] = {}
    for name in devices.values_list("location__site__name", flat=True):
        per_site[name] = per_site.get(name, 0) + 1
    scope_devices = sum(per_site.values())
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat(), "days": days},
        "filters": {"site": site, "device": device, "version": version},
        "devices": scope_devices,
        "overall": figures.summarize(rows, days, scope_devices),
        "by_site": figures.by(rows, lambda r: r.site, days, lambda s: per_site.get(s, 0)),
        "by_device": figures.by(rows, lambda r: r.device, days, lambda _: 1),
        "by_version": {
            str(k if k is not None else ""): v
            for k, v in figures.by(rows, lambda r: r.version, days, lambda _: scope_devices).items()
        },
        "daily": figures.daily(rows, since.date(), until.date()),
    }
