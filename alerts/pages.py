"""Operator pages: the live map (``/``), the review queue (``/alerts/``) and one alert's review.

Thin views: the data comes from the models and ``alerts.reviews`` / ``alerts.api``; live updates
arrive over ``/ws/alerts/`` and decisions go through ``POST /api/alerts/<id>/review/``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from accounts.permissions import is_admin, operator_required
from devices.map_data import map_settings, site_dict
from devices.models import Site

from .api import filter_alerts
from .live_state import RECENT_ALERTS, device_states
from .models import Alert, Review
from .picture_layout import time_axis
from .reviews import alert_payload, alert_payloads, latest_reviews

PAGE_SIZE = 100


def console_settings() -> dict:
    """The alarm: repeated every ``EYESCREAM_ALARM_REPEAT_S`` seconds while alerts wait for
    review (0: once per alert)."""
    return {"alarm_repeat_s": float(getattr(settings, "EYESCREAM_ALARM_REPEAT_S", 30))}


def last_alert_id() -> int:
    return Alert.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


@operator_required
def live_map(request):
    recent = list(Alert.objects.all()[:RECENT_ALERTS])
    data = {
        **map_settings(),
        **console_settings(),
        "sites": [site_dict(s) for s in Site.objects.all()],
        "devices": device_states(),
        "alerts": alert_payloads(recent),
        "last_id": last_alert_id(),
    }
    return render(request, "alerts/map.html", {"data": data})


def in_words(detail) -> str:
    """A filter's validation errors as a sentence: "Status: unknown status ['x']."."""
    if isinstance(detail, dict):
        return " ".join(f"{str(k).capitalize()}: {in_words(v)}" for k, v in detail.items())
    if isinstance(detail, list | tuple):
        return " ".join(in_words(item) for item in detail)
    text = str(detail)
    return text if text.endswith(".") else text + "."


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
        alerts, error = Alert.objects.none(), in_words(bad.detail)
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    verdicts = latest_reviews([a.pk for a in page.object_list])
    for a in page.object_list:
        a.verdict = verdicts.get(a.pk)
    context = {
        "page": page,
        "error": error,
        "status": request.GET.get("status", Alert.NEW),
        "site": params.get("site", ""),
        "since": params.get("since", ""),
        "until": params.get("until", ""),
        "statuses": ["new", "confirmed", "dismissed", "all"],
        "sites": Site.objects.values_list("name", flat=True),
        "data": {**map_settings(), **console_settings(), "last_id": last_alert_id()},
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
        **console_settings(),
        "alert": alert_payload(alert),
        "picture_time_axis": time_axis(),
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
            "reviews": alert.reviews.select_related("user").order_by("-created", "-id"),
            "can_admin": is_admin(request.user),
        },
    )


@operator_required
def api_docs(request):
    return render(request, "alerts/api_docs.html")
