"""JSON API for alerts: list/filter, read one, post a review (``/api/alerts/``).

Alerts come out exactly as the dashboard WebSocket sends them (``alert_payload``), so a client
that reconnects can fetch what it missed with ``?since_id=<last id seen>`` and treat both alike.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api_auth import API_AUTHENTICATION
from accounts.permissions import IsOperator

from .models import Alert, Review
from .reviews import (
    AlreadyReviewed,
    NothingToRevise,
    ReviewError,
    alert_payload,
    review_alert,
    review_dict,
    revise_review,
)

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
# Token first: an anonymous request gets 401 with ``WWW-Authenticate: Token``.


class DeviceRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()


class ReviewOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField()
    label = serializers.ChoiceField(
        choices=[*Review.LABELS, ("", "verdict withdrawn")],
        help_text='"" where the verdict was withdrawn (the alert is new again)',
    )
    label_name = serializers.CharField()
    note = serializers.CharField()
    created = serializers.DateTimeField()


class AlertSerializer(serializers.Serializer):
    """Documents the shape; the data itself is ``alerts.reviews.alert_payload``."""

    id = serializers.IntegerField()
    device = DeviceRefSerializer()
    site = serializers.CharField()
    location = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    x = serializers.FloatField(allow_null=True, help_text="on the floor plan, 0..1 of its width")
    y = serializers.FloatField(allow_null=True, help_text="on the floor plan, 0..1 of its height")
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    open = serializers.BooleanField()
    peak_score = serializers.FloatField()
    mean_score = serializers.FloatField()
    score_curve = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="[[seconds from the snippet's start, probability], ...]",
    )
    model_version = serializers.CharField()
    model_number = serializers.IntegerField(
        allow_null=True, help_text="the registered model version that scored it"
    )
    status = serializers.ChoiceField(choices=Alert.STATUSES)
    snippet_url = serializers.CharField(allow_null=True)
    snippet_started_at = serializers.DateTimeField(allow_null=True)
    spectrogram_url = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    review = ReviewOutSerializer(allow_null=True)

    def to_representation(self, instance: Alert) -> dict:
        return alert_payload(instance)


class ReviewInSerializer(serializers.Serializer):
    label = serializers.ChoiceField(
        choices=[*Review.LABELS, ("", "withdraw")],
        allow_blank=True,
        help_text='1 confirms; 0_0, 0_1, 0_2 dismiss with that reason; "" (with replaces) '
        "withdraws the verdict",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    replaces = serializers.IntegerField(
        required=False,
        help_text="the id of the verdict in force (its review.id) to change or withdraw",
    )

    def validate(self, data):
        if data["label"] == Review.WITHDRAWN and "replaces" not in data:
            raise ValidationError({"label": "withdrawing needs the verdict it replaces"})
        return data


def _int_param(params, name: str) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationError({name: "must be an integer"}) from None


def _time_param(params, name: str):
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationError({name: "must be an ISO 8601 date and time"})
    if timezone.is_naive(parsed):  # a form's datetime-local: the site's time zone
        parsed = timezone.make_aware(parsed)
    return parsed


def filter_alerts(params):
    """Alerts matching ``status``, ``site``, ``device``, ``since``/``until``, ``since_id``."""
    alerts = Alert.objects.all()
    if params.get("status"):
        statuses = params["status"].split(",")
        unknown = set(statuses) - {s for s, _ in Alert.STATUSES}
        if unknown:
            raise ValidationError({"status": f"unknown status {sorted(unknown)}"})
        alerts = alerts.filter(status__in=statuses)
    if params.get("site"):
        alerts = alerts.filter(site_name=params["site"])
    device = _int_param(params, "device")
    if device is not None:
        alerts = alerts.filter(device_id=device)
    since, until = _time_param(params, "since"), _time_param(params, "until")
    if since is not None:
        alerts = alerts.filter(started_at__gte=since)
    if until is not None:
        alerts = alerts.filter(started_at__lte=until)
    since_id = _int_param(params, "since_id")
    if since_id is not None:
        # Reconnect catch-up: every alert created after the last one seen, oldest first.
        alerts = alerts.filter(pk__gt=since_id).order_by("pk")
    return alerts


LIST_PARAMETERS = [
    OpenApiParameter("status", str, description="new, confirmed, dismissed (comma-separated)"),
    OpenApiParameter("site", str, description="site name"),
    OpenApiParameter("device", int, description="device id"),
    OpenApiParameter("since", str, description="started at or after (ISO 8601)"),
    OpenApiParameter("until", str, description="started at or before (ISO 8601)"),
    OpenApiParameter("since_id", int, description="only alerts with a larger id, oldest first"),
    OpenApiParameter("limit", int, description=f"at most this many (default {DEFAULT_LIMIT})"),
]


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts, newest first (oldest first with ``since_id``). Operators and admins."""

    authentication_classes = API_AUTHENTICATION
    permission_classes = [IsOperator]
    serializer_class = AlertSerializer
    queryset = Alert.objects.all()

    def get_queryset(self):
        if self.action == "list":
            return filter_alerts(self.request.query_params)
        return Alert.objects.all()

    @extend_schema(parameters=LIST_PARAMETERS)
    def list(self, request, *args, **kwargs):
        limit = _int_param(request.query_params, "limit") or DEFAULT_LIMIT
        alerts = list(self.get_queryset()[: max(1, min(limit, MAX_LIMIT))])
        return Response([alert_payload(a) for a in alerts])

    @extend_schema(
        request=ReviewInSerializer,
        responses={200: AlertSerializer, 409: None, 400: None},
        description="Confirm (label 1) or dismiss (0_0, 0_1, 0_2) a new alert. The first "
        "decision wins; a later one gets 409 saying who decided. With `replaces` (the id of the "
        'verdict in force), change that verdict, or withdraw it with label "" (the alert is '
        "new again); each is a new review row. 409 if the verdict in force is another by now.",
    )
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        form = ReviewInSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            address = request.META.get("REMOTE_ADDR")
            if "replaces" in data:
                alert = revise_review(
                    int(pk),
                    request.user,
                    data["label"],
                    data["replaces"],
                    data.get("note"),
                    address=address,
                )
            else:
                alert = review_alert(
                    int(pk), request.user, data["label"], data.get("note"), address=address
                )
        except NothingToRevise as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        except (ValueError, ReviewError) as error:
            return Response({"detail": str(error)}, status=status.HTTP_404_NOT_FOUND)
        except AlreadyReviewed as taken:
            return Response(
                {
                    "detail": str(taken),
                    "alert": alert_payload(taken.alert),
                    "review": review_dict(taken.review),
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(alert_payload(alert))
