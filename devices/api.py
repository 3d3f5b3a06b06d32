"""JSON API for sites, locations and devices (``/api/sites/``, ``/api/locations/``,
``/api/devices/``): reading for operators and admins, provisioning for admins.

Admins create and update sites, locations and devices, disable or enable a device (or every
device of a site or location), and rotate or revoke a device's token. A token is in the answer
of the request that made it (``POST /api/devices/``, ``.../rotate_token/``) and nowhere else:
only its keyed hash is stored.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api_auth import API_AUTHENTICATION
from accounts.audit import Actor, record
from accounts.permissions import IsAdmin, OperatorReadsAdminWrites

from . import services
from .bulk_import import ImportRejected, import_devices
from .models import Device, Location, Site


class LocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "name", "latitude", "longitude", "x", "y"]


class LocationWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "site", "name", "latitude", "longitude", "x", "y"]


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
            "time_zone",
            "sensitivity",
            "decision",
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
            "sensitivity",
            "decision",
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


class DeviceWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ["id", "name", "location", "enabled", "token_expires", "sensitivity", "decision"]


class NewTokenSerializer(DeviceSerializer):
    token = serializers.CharField(read_only=True, help_text="shown once: store it in the device")

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "token"]
        read_only_fields = fields


DISABLED_COUNT = inline_serializer("DevicesChanged", {"devices": serializers.IntegerField()})


def set_enabled(devices, enabled: bool, actor: Actor) -> int:
    """Each device saved (and audited) on its own: the save signal tells a live stream to
    re-check its right to stream (a disabled device's stream closes)."""
    changed = 0
    with transaction.atomic():
        for device in devices.select_for_update():
            if device.enabled != enabled:
                services.set_enabled(device, enabled, actor)
                changed += 1
    return changed


class ProvisioningViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Read for operators; create and update (PUT, PATCH) for admins. Nothing is deleted here:
    a device that goes out of service is disabled, so that its alerts keep their place."""

    authentication_classes = API_AUTHENTICATION
    permission_classes = [OperatorReadsAdminWrites]
    write_serializer_class: type[serializers.Serializer]

    def get_serializer_class(self):
        if self.request is not None and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            return self.write_serializer_class
        return self.serializer_class

    def actor(self) -> Actor:
        return Actor.of_request(self.request)

    def perform_create(self, serializer):
        with transaction.atomic():
            record(self.actor(), "create", serializer.save())

    def perform_update(self, serializer):
        with transaction.atomic():
            obj = serializer.save()
            record(
                self.actor(), "change", obj, details={"fields": sorted(serializer.validated_data)}
            )

    def _devices_switched(self, devices, enabled: bool) -> Response:
        return Response({"devices": set_enabled(devices, enabled, self.actor())})


class SiteViewSet(ProvisioningViewSet):
    serializer_class = SiteSerializer
    write_serializer_class = SiteSerializer
    queryset = Site.objects.prefetch_related("locations")

    @extend_schema(request=None, responses=DISABLED_COUNT)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def disable(self, request, pk=None):
        """Disable every device of the site (their streams close); the count changed."""
        return self._devices_switched(
            Device.objects.filter(location__site=self.get_object()), False
        )

    @extend_schema(request=None, responses=DISABLED_COUNT)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def enable(self, request, pk=None):
        return self._devices_switched(Device.objects.filter(location__site=self.get_object()), True)


class LocationViewSet(ProvisioningViewSet):
    serializer_class = LocationWriteSerializer
    write_serializer_class = LocationWriteSerializer
    queryset = Location.objects.select_related("site")

    @extend_schema(request=None, responses=DISABLED_COUNT)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def disable(self, request, pk=None):
        """Disable every device of the location (their streams close); the count changed."""
        return self._devices_switched(Device.objects.filter(location=self.get_object()), False)

    @extend_schema(request=None, responses=DISABLED_COUNT)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def enable(self, request, pk=None):
        return self._devices_switched(Device.objects.filter(location=self.get_object()), True)


class DeviceViewSet(ProvisioningViewSet):
    serializer_class = DeviceSerializer
    write_serializer_class = DeviceWriteSerializer
    queryset = Device.objects.select_related("location__site")

    @extend_schema(request=DeviceWriteSerializer, responses={201: NewTokenSerializer})
    def create(self, request, *args, **kwargs):
        """Register a device; the answer holds its token, shown this once."""
        form = DeviceWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with transaction.atomic():
            device = form.save()
            token = services.issue_token(
                device, device.token_expires, self.actor(), action="create"
            )
        return Response(self._with_token(device, token), status=status.HTTP_201_CREATED)

    @extend_schema(responses=DeviceSerializer)
    def update(self, request, *args, **kwargs):
        super().update(request, *args, **kwargs)
        return Response(DeviceSerializer(self.get_object()).data)

    def _with_token(self, device: Device, token: str) -> dict:
        device = self.get_queryset().get(pk=device.pk)
        return {**DeviceSerializer(device).data, "token": token}

    def _set_enabled(self, enabled: bool) -> Response:
        device = self.get_object()
        set_enabled(Device.objects.filter(pk=device.pk), enabled, self.actor())
        return Response(DeviceSerializer(self.get_object()).data)

    @extend_schema(request=None, responses=DeviceSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def disable(self, request, pk=None):
        return self._set_enabled(False)

    @extend_schema(request=None, responses=DeviceSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def enable(self, request, pk=None):
        return self._set_enabled(True)

    @extend_schema(request=None, responses=NewTokenSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def rotate_token(self, request, pk=None):
        """A new token for the device, shown this once; the old one stops working (a stream
        that uses it is closed)."""
        device = self.get_object()
        token = services.issue_token(device, device.token_expires, self.actor())
        return Response(self._with_token(device, token))

    @extend_schema(
        request=inline_serializer(
            "DeviceImport",
            {
                "file": serializers.FileField(required=False),
                "csv": serializers.CharField(required=False),
            },
        ),
        responses={201: NewTokenSerializer(many=True), 400: None},
    )
    @action(detail=False, methods=["post"], url_path="import", permission_classes=[IsAdmin])
    def import_csv(self, request):
        """Devices from CSV (an uploaded ``file`` or a ``csv`` field): columns ``site``,
        ``location``, ``name``, optional ``latitude``, ``longitude``, ``enabled``; sites and
        locations found by name or made. All rows or none; each device's token, shown once."""
        upload = request.data.get("file")
        try:
            text = upload.read().decode("utf-8") if upload else str(request.data.get("csv", ""))
            made = import_devices(text, self.actor())
        except UnicodeDecodeError:
            return Response({"errors": ["the file is not UTF-8 text"]}, status=400)
        except ImportRejected as rejected:
            return Response({"errors": rejected.errors}, status=400)
        answer = [self._with_token(device, token) for device, token in made]
        return Response(answer, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=DeviceSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def revoke_token(self, request, pk=None):
        """The device has no token until one is rotated in (a stream that uses it is closed)."""
        device = self.get_object()
        services.revoke_token(device, self.actor())
        return Response(DeviceSerializer(self.get_object()).data)
