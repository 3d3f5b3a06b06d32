"""``/api/``: alerts, sites, locations, devices, the audit trail (admins), the OpenAPI schema,
API docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from accounts.api import AuditEventViewSet
from accounts.api_auth import API_AUTHENTICATION
from accounts.permissions import IsOperator
from devices.api import DeviceViewSet, LocationViewSet, SiteViewSet

from .api import AlertViewSet
from .pages import api_docs

router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="api-alert")
router.register("sites", SiteViewSet, basename="api-site")
router.register("locations", LocationViewSet, basename="api-location")
router.register("devices", DeviceViewSet, basename="api-device")
router.register("audit", AuditEventViewSet, basename="api-audit")

urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(
            authentication_classes=API_AUTHENTICATION, permission_classes=[IsOperator]
        ),
        name="api-schema",
    ),
    path("docs/", api_docs, name="api-docs"),
    path("", include(router.urls)),
]
