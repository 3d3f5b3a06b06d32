"""``/api/``: destinations, deliveries, and an alert's deliveries."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .api import DeliveryViewSet, DestinationViewSet, alert_deliveries

router = SimpleRouter()
router.register("destinations", DestinationViewSet, basename="api-destination")
router.register("deliveries", DeliveryViewSet, basename="api-delivery")

urlpatterns = [
    path("alerts/<int:alert_id>/deliveries/", alert_deliveries, name="api-alert-deliveries"),
    path("", include(router.urls)),
]
