"""``/api/audit/``: the audit trail, read-only, for admins (newest first).

Filters: ``action``, ``object_type`` (``devices.device``), ``object_id``, ``actor`` (a name),
``since_id`` (only newer events, oldest first) and ``limit`` (default 100, at most 1000).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .api_auth import API_AUTHENTICATION
from .models import AuditEvent
from .permissions import IsAdmin

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
TEXT_FILTERS = {"action": "action", "object_type": "object_type", "object_id": "object_id"}


class AuditEventSerializer(serializers.ModelSerializer):
    actor_user = serializers.IntegerField(source="actor_user_id", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "time",
            "actor_kind",
            "actor_user",
            "actor_device_id",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "object_name",
            "details",
            "source_ip",
        ]
        read_only_fields = fields


def _int(params, name: str) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationError({name: "must be an integer"}) from None


def filter_events(params):
    events = AuditEvent.objects.all()
    for param, field in TEXT_FILTERS.items():
        if params.get(param):
            events = events.filter(**{field: params[param]})
    if params.get("actor"):
        events = events.filter(actor_name=params["actor"])
    since_id = _int(params, "since_id")
    if since_id is not None:
        events = events.filter(pk__gt=since_id).order_by("pk")
    return events


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail. Admins only; nothing here changes it."""

    authentication_classes = API_AUTHENTICATION
    permission_classes = [IsAdmin]
    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.all()

    @extend_schema(
        parameters=[
            OpenApiParameter("action", str, description="e.g. rotate_token, review, delete"),
            OpenApiParameter("object_type", str, description="app.model, e.g. devices.device"),
            OpenApiParameter("object_id", str),
            OpenApiParameter("actor", str, description="the actor's name"),
            OpenApiParameter("since_id", int, description="only newer events, oldest first"),
            OpenApiParameter("limit", int, description=f"at most this many ({DEFAULT_LIMIT})"),
        ]
    )
    def list(self, request, *args, **kwargs):
        limit = _int(request.query_params, "limit") or DEFAULT_LIMIT
        events = filter_events(request.query_params)[: max(1, min(limit, MAX_LIMIT))]
        return Response(AuditEventSerializer(events, many=True).data)
