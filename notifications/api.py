"""JSON API: destinations (admins), deliveries (operators read), an alert's deliveries.

``/api/destinations/``, ``/api/deliveries/?alert=&destination=&status=``,
``/api/alerts/<id>/deliveries/``. Secrets and passwords are written, never read back.
"""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError as ModelValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api_auth import API_AUTHENTICATION
from accounts.permissions import IsAdmin, IsOperator
from alerts.models import Alert

from .events import EVENT_TYPES
from .models import Delivery, Destination

MAX_DELIVERIES = 500


class DestinationSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), help_text="event types sent here"
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Destination
        fields = [
            "id",
            "site",
            "name",
            "kind",
            "enabled",
            "events",
            "url",
            "secret",
            "has_secret",
            "recipients",
            "topic_prefix",
            "username",
            "password",
            "ca_file",
            "tls_insecure",
            "last_status",
            "last_error",
            "last_error_at",
            "last_success_at",
            "created",
        ]
        read_only_fields = [
            "last_status",
            "last_error",
            "last_error_at",
            "last_success_at",
            "created",
        ]
        extra_kwargs = {"secret": {"write_only": True}, "password": {"write_only": True}}

    def get_has_secret(self, destination: Destination) -> bool:
        return bool(destination.secret)

    def validate(self, attrs: dict) -> dict:
        """The model's own checks (URL scheme, addresses, event names) on the result."""
        candidate = copy.copy(self.instance) if self.instance else Destination()
        for field, value in attrs.items():
            setattr(candidate, field, value)
        try:
            candidate.clean()
        except ModelValidationError as error:
            raise ValidationError(error.message_dict) from None
        return attrs


class DeliverySerializer(serializers.ModelSerializer):
    destination_name = serializers.CharField(source="destination.name", read_only=True)
    kind = serializers.CharField(source="destination.kind", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "destination",
            "destination_name",
            "kind",
            "alert",
            "device",
            "event",
            "message_id",
            "attempt",
            "status",
            "response_code",
            "error",
            "duration_ms",
            "created",
        ]
        read_only_fields = fields


class DestinationViewSet(viewsets.ModelViewSet):
    """A site's destinations (``?site=<id>``). Admins only."""

    authentication_classes = API_AUTHENTICATION
    permission_classes = [IsAdmin]
    serializer_class = DestinationSerializer

    def get_queryset(self):
        destinations = Destination.objects.select_related("site")
        site = self.request.query_params.get("site")
        if site:
            if not site.isdigit():
                raise ValidationError({"site": "must be a site id"})
            destinations = destinations.filter(site_id=int(site))
        return destinations


DELIVERY_FILTERS = {"alert": "alert_id", "destination": "destination_id", "status": "status"}


class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Delivery attempts, newest first (at most 500). Operators and admins."""

    authentication_classes = API_AUTHENTICATION
    permission_classes = [IsOperator]
    serializer_class = DeliverySerializer

    def get_queryset(self):
        deliveries = Delivery.objects.select_related("destination")
        for param, field in DELIVERY_FILTERS.items():
            value = self.request.query_params.get(param)
            if value:
                deliveries = deliveries.filter(**{field: value})
        return deliveries

    @extend_schema(
        parameters=[
            OpenApiParameter("alert", int, description="alert id"),
            OpenApiParameter("destination", int, description="destination id"),
            OpenApiParameter("status", str, description="delivered, failed, gave_up"),
        ]
    )
    def list(self, request, *args, **kwargs):
        try:
            deliveries = list(self.get_queryset()[:MAX_DELIVERIES])
        except (ValueError, ModelValidationError):
            raise ValidationError({"detail": "alert and destination are ids"}) from None
        return Response(DeliverySerializer(deliveries, many=True).data)


@extend_schema(responses=DeliverySerializer(many=True))
@api_view(["GET"])
@authentication_classes(API_AUTHENTICATION)
@permission_classes([IsOperator])
def alert_deliveries(request, alert_id: int):
    """Every delivery attempt of the alert's messages, newest first."""
    alert = get_object_or_404(Alert, pk=alert_id)
    deliveries = Delivery.objects.filter(alert=alert).select_related("destination")
    return Response(DeliverySerializer(deliveries[:MAX_DELIVERIES], many=True).data)
