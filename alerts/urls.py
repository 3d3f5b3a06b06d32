from django.urls import path, re_path

from . import pages, views

urlpatterns = [
    re_path(
        r"^media/(?P<folder>snippets|spectrograms)/(?P<path>.+)$",
        views.alert_media,
        name="alert-media",
    ),
    path("", pages.live_map, name="map"),
    path("alerts/", pages.alert_list, name="alert-list"),
    path("alerts/export.csv", pages.alert_export, name="alert-export"),
    path("alerts/acknowledge/", pages.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:alert_id>/", pages.alert_detail, name="alert-detail"),
]
