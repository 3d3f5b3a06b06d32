from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("alerts.api_urls")),
    path("", include("devices.urls")),
    path("", include("alerts.urls")),
]
