"""Operator pages: the live map (``/``), the review queue (``/alerts/``) and one alert's review.

Thin views: the data comes from the models and ``alerts.reviews`` / ``alerts.api``; live updates
arrive over ``/ws/alerts/`` and decisions go through ``POST /api/alerts/<id>/review/``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError

from accounts.permissions import is_admin, operator_required
from devices.local_time import site_zones
from devices.map_data import map_settings, site_dict
from devices.models import Site

from .api import NOT_REVIEWED, filter_alerts
from .export import csv_lines
from .live_state import RECENT_ALERTS, device_states
from .models import Alert, Review
from .picture_layout import time_axis
from .reviews import ReviewError, alert_payload, alert_payloads, latest_reviews, review_many

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


QUEUE_FILTERS = ("status", "site", "device_name", "label", "reviewer", "since", "until")


def queue_params(request):
    """The queue's filters from the query string: ``new`` alerts unless a status is named
    (``all``: every status). The page and its CSV export read them the same way."""
    params = request.GET.copy()
    if "status" not in params:
        params["status"] = Alert.NEW
    if params.get("status") == "all":
        params["status"] = ""
    return params


def queue_alerts(request):
    """The filtered alerts and, for a bad filter, its error in words (and no alerts)."""
    try:
        return filter_alerts(queue_params(request)), ""
    except ValidationError as bad:
        return Alert.objects.none(), in_words(bad.detail)


@operator_required
def alert_list(request):
    params = queue_params(request)
    alerts, error = queue_alerts(request)
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    verdicts = latest_reviews([a.pk for a in page.object_list])
    zones = site_zones(a.site_name for a in page.object_list)
    for a in page.object_list:
        a.verdict = verdicts.get(a.pk)
        a.time_zone = zones[a.site_name]
    context = {
        "page": page,
        "error": error,
        "status": request.GET.get("status", Alert.NEW),
        **{name: params.get(name, "") for name in QUEUE_FILTERS if name != "status"},
        "statuses": ["new", "confirmed", "dismissed", "all"],
        "sites": Site.objects.values_list("name", flat=True),
        "labels": Review.LABELS,
        "not_reviewed": NOT_REVIEWED,
        "server_time_zone": settings.TIME_ZONE,
        "query": request.GET.urlencode(),
        "data": {**map_settings(), **console_settings(), "last_id": last_alert_id()},
    }
    return render(request, "alerts/review_list.html", context)


@operator_required
def alert_export(request):
    """The queue's filtered list as CSV (every page of it), for the same query string."""
    alerts, error = queue_alerts(request)
    if error:
        messages.error(request, f"Nothing exported: {error}")
        return redirect(f"{reverse('alert-list')}?{request.GET.urlencode()}")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        csv_lines(alerts.iterator(chunk_size=500)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="alerts-{stamp}.csv"'
    return response


@require_POST
@operator_required
def alert_acknowledge(request):
    """Bulk acknowledge: one verdict and reason for the selected alerts (each its own Review
    row and audit event); then back to the queue as it was (POST-redirect-GET)."""
    back = request.POST.get("next") or reverse("alert-list")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("alert-list")
    try:
        ids = [int(i) for i in request.POST.getlist("alert")]
    except ValueError:
        messages.error(request, "The selection names an alert that is not a number.")
        return redirect(back)
    try:
        decided, skipped = review_many(
            ids,
            request.user,
            request.POST.get("label", "").strip(),
            request.POST.get("note", ""),
            address=request.META.get("REMOTE_ADDR"),
        )
    except ReviewError as error:
        messages.error(request, f"Nothing acknowledged: {in_words(str(error))}")
        return redirect(back)
    if decided:
        label = dict(Review.LABELS)[request.POST["label"].strip()]
        messages.success(request, f"{len(decided)} alert(s) marked “{label}”.")
    for alert_id, why in skipped.items():
        messages.warning(request, f"Alert {alert_id} skipped: {why}.")
    return redirect(back)


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
            "time_zone": data["alert"]["time_zone"],
        },
    )


@operator_required
def api_docs(request):
    return render(request, "alerts/api_docs.html")
