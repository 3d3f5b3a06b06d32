"""Operator pages: the live map (``/``), the review queue (``/alerts/``) and one alert's review.

Thin views: the data comes from the models and ``alerts.reviews`` / ``alerts.api``; live updates
arrive over ``/ws/alerts/`` and decisions go through ``POST /api/alerts/<id>/review/``.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from accounts.permissions import is_admin, operator_required
from devices.map_data import map_settings, site_dict
from devices.models import Device, Site
from devices.positions import location_latlng

from .api import filter_alerts
from .models import Alert, Review
from .reviews import alert_payload

RECENT_ALERTS = 50
PAGE_SIZE = 100


def last_alert_id() -> int:
    return Alert.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def device_dict(device: Device, new_alerts: list[int]) -> dict:
    location = device.location
    lat, lng = location_latlng(location, location.site)
    return {
        "id": device.pk,
        "name": device.name,
        "site": location.site.name,
        "location": location.name,
        "latitude": lat,
        "longitude": lng,
        "enabled": device.enabled,
        "state": device.connection_state,
        "last_seen": device.last_seen.isoformat() if device.last_seen else None,
        "level_dbfs": device.level_dbfs,
        "new_alerts": new_alerts,
        "alerting": bool(new_alerts),
    }


@operator_required
def live_map(request):
    recent = list(Alert.objects.all()[:RECENT_ALERTS])
    new_by_device: dict[int, list[int]] = {}
    for device_id, alert_id in Alert.objects.filter(status=Alert.NEW).values_list("device", "pk"):
        new_by_device.setdefault(device_id, []).append(alert_id)
    devices = Device.objects.select_related("location__site")
    data = {
        **map_settings(),
        "sites": [site_dict(s) for s in Site.objects.all()],
        "devices": [device_dict(d, new_by_device.get(d.pk, [])) for d in devices],
        "alerts": [alert_payload(a) for a in recent],
        "last_id": last_alert_id(),
    }
    return render(request, "alerts/map.html", {"data": data})


@operator_required
def alert_list(request):
    params = request.GET.copy()
    if "status" not in params:
        params["status"] = Alert.NEW
    if params.get("status") == "all":
        params["status"] = ""
    try:
        alerts = filter_alerts(params)
        error = ""
    except ValidationError as bad:
        alerts, error = Alert.objects.none(), str(bad.detail)
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "error": error,
        "status": request.GET.get("status", Alert.NEW),
        "site": params.get("site", ""),
        "since": params.get("since", ""),
        "until": params.get("until", ""),
        "statuses": ["new", "confirmed", "dismissed", "all"],
        "sites": Site.objects.values_list("name", flat=True),
        "data": {**map_settings(), "last_id": last_alert_id()},
    }
    return render(request, "alerts/review_list.html", context)


def next_new_alert(alert: Alert) -> Alert | None:
    """The next alert to review after this one: the queue is newest first."""
    pending = Alert.objects.filter(status=Alert.NEW).exclude(pk=alert.pk)
    older = pending.filter(started_at__lte=alert.started_at).order_by("-started_at", "-pk")
    return older.first() or pending.order_by("-started_at", "-pk").first()


@operator_required
def alert_detail(request, alert_id: int):
    alert = get_object_or_404(Alert.objects.select_related("device__location__site"), pk=alert_id)
    following = next_new_alert(alert)
    data = {
        **map_settings(),
        "alert": alert_payload(alert),
        "next_url": reverse("alert-detail", args=[following.pk]) if following else None,
        "list_url": reverse("alert-list"),
        "last_id": last_alert_id(),
    }
    return render(
        request,
        "alerts/review_detail.html",
        {
            "alert": alert,
            "payload": data["alert"],
            "data": data,
            "labels": Review.LABELS[1:],
            "reviews": alert.reviews.select_related("user"),
            "can_admin": is_admin(request.user),
        },
    )


@operator_required
def api_docs(request):
    return render(request, "alerts/api_docs.html")
