"""``/api/models/``: registered model versions, promotion and rollback (admins), and the live
figures from operators' verdicts (``/api/models/figures/``, operators and admins).

Promote: ``POST /api/models/<number>/promote/`` with an optional ``site`` (id); rollback:
``POST /api/models/rollback/`` with an optional ``site``. Both answer the version now active
for that scope, 409 when the change cannot be made (already active, nothing to roll back,
other features) and 400 for an unknown site.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api_auth import API_AUTHENTICATION
from accounts.audit import Actor
from accounts.permissions import IsAdmin, OperatorReadsAdminWrites
from devices.models import Site

from . import services
from .live_figures import live_figures
from .models import ModelVersion


class ModelVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    promoted_by = serializers.CharField(source="promoted_by.username", default=None, read_only=True)
    parent = serializers.IntegerField(source="parent.number", default=None, read_only=True)
    active_for = serializers.SerializerMethodField(
        help_text='where it is active: "global" and/or site ids'
    )

    class Meta:
        model = ModelVersion
        fields = [
            "number",
            "digest",
            "checksum",
            "source",
            "created",
            "created_by",
            "parent",
            "data_description",
            "config",
            "metrics",
            "report_path",
            "promoted_by",
            "promoted_at",
            "active_for",
        ]
        read_only_fields = fields

    def get_active_for(self, version) -> list:
        choices = self.context.setdefault("choices", services.active_choices())
        return [
            "global" if scope is None else scope
            for scope, active in choices.items()
            if active.pk == version.pk
        ]


def _int(data, name: str) -> int | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "must be an integer"}) from None


def _site(data) -> int | None:
    site = _int(data, "site")
    if site is not None and not Site.objects.filter(pk=site).exists():
        raise ValidationError({"site": f"no site {site}"})
    return site


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Registered model versions, newest first, each with where it is active."""

    authentication_classes = API_AUTHENTICATION
    permission_classes = [OperatorReadsAdminWrites]
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.select_related("created_by", "promoted_by", "parent")
    lookup_field = "number"
    lookup_value_regex = r"\d+"

    def _answer(self, site: int | None) -> Response:
        version = services.active_version(site)
        return Response(
            {"site": site, "active": self.get_serializer(version).data if version else None}
        )

    @extend_schema(request=None, responses={200: None, 409: None, 400: None})
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def promote(self, request, number=None):
        """Make this version active, globally or for ``site``."""
        version = self.get_object()
        site = _site(request.data)
        try:
            services.promote(
                version, user=request.user, site=site, address=Actor.of_request(request).address
            )
        except services.PromotionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return self._answer(site)

    @extend_schema(request=None, responses={200: None, 409: None, 400: None})
    @action(detail=False, methods=["post"], permission_classes=[IsAdmin])
    def rollback(self, request):
        """Go back to the version active before the current one, globally or for ``site``."""
        site = _site(request.data)
        try:
            services.rollback(
                user=request.user, site=site, address=Actor.of_request(request).address
            )
        except services.PromotionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return self._answer(site)

    @extend_schema(
        parameters=[
            OpenApiParameter("days", int, description="the last N days by onset (30, at most 366)"),
            OpenApiParameter("site", int),
            OpenApiParameter("device", int),
            OpenApiParameter("version", int, description="a model version number"),
        ],
        responses={200: None},
    )
    @action(detail=False, methods=["get"])
    def figures(self, request):
        """Precision, alerts per day, false alerts per device-day, backlog, detection and review
        latency: overall, per site, device, version and day."""
        params = request.query_params
        return Response(
            live_figures(
                days=_int(params, "days") or 30,
                site=_int(params, "site"),
                device=_int(params, "device"),
                version=_int(params, "version"),
            )
        )
