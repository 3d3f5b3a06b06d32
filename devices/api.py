"""JSON API for sites and devices (``/api/sites/``, ``/api/devices/``).

Operators and admins read (devices with their health); admins may disable or enable a device.
Tokens are never exposed here: register, rotate and revoke on the admin pages (``/manage/``).
"""

from __future__ import annotations

from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api_auth import API_AUTHENTICATION
from accounts.audit import Actor
from accounts.permissions import IsAdmin, IsOperator

from . import services
from .models import Device, Location, Site


class LocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "name", "latitude", "longitude", "x", "y"]


class SiteSerializer(serializers.ModelSerializer):
    locations = LocationSerializer(many=True, read_only=True)

    class Meta:
        model = Site
        fields = [
            "id",
            "name",
            "address",
            "latitude",
            "longitude",
            "floor_plan_bounds",
            "locations",
        ]


class DeviceSerializer(serializers.ModelSerializer):
    site = serializers.CharField(source="location.site.name", read_only=True)
    location = LocationSerializer(read_only=True)
    has_token = serializers.BooleanField(read_only=True)

    class Meta:
        model = Device
        fields = [
            "id",
            "name",
            "enabled",
            "site",
            "location",
            "has_token",
            "token_expires",
            "connection_state",
            "client_name",
            "last_seen",
            "level_dbfs",
            "clipping",
            "frames_received",
            "frames_rejected",
            "seconds_received",
            "windows",
            "last_error",
        ]
        read_only_fields = fields


class SiteViewSet(viewsets.ReadOnlyModelViewSet):
    authentication_classes = API_AUTHENTICATION
    permission_classes = [IsOperator]
    serializer_class = SiteSerializer
    queryset = Site.objects.prefetch_related("locations")


class DeviceViewSet(viewsets.ReadOnlyModelViewSet):
    authentication_classes = API_AUTHENTICATION
    permission_classes = [IsOperator]
    serializer_class = DeviceSerializer
    queryset = Device.objects.select_related("location__site")

    def _set_enabled(self, enabled: bool) -> Response:
        device = self.get_object()
        # The save signal tells a live stream to re-check (it closes if disabled).
        services.set_enabled(device, enabled, Actor.of_request(self.request))
        return Response(DeviceSerializer(device).data)

    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def disable(self, request, pk=None):
        return self._set_enabled(False)

    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def enable(self, request, pk=None):
        return self._set_enabled(True)
