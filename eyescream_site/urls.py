from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.login_throttle import ThrottledAuthenticationForm
from eyescream_site.health_views import healthz, metrics_view, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("notifications.api_urls")),
    path("api/", include("alerts.api_urls")),
    path("api/", include("registry.api_urls")),
    path("", include("devices.urls")),
    path("", include("alerts.urls")),
    path("", include("registry.urls")),
    path("", include("feedback.urls")),
]
