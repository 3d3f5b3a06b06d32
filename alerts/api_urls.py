"""``/api/``: alerts, sites, devices, the OpenAPI schema and a self-contained docs page."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from devices.api import DeviceViewSet, SiteViewSet

from .api import API_AUTHENTICATION, AlertViewSet
from .pages import api_docs
from .permissions import IsOperator

router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="api-alert")
router.register("sites", SiteViewSet, basename="api-site")
router.register("devices", DeviceViewSet, basename="api-device")

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
