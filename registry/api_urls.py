"""``/api/models/`` (registry.api)."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .api import ModelVersionViewSet

router = SimpleRouter()
router.register("models", ModelVersionViewSet, basename="api-model")

urlpatterns = [path("", include(router.urls))]
