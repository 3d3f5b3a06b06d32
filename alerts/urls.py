from django.urls import re_path

from . import views

urlpatterns = [
    re_path(
        r"^media/(?P<folder>snippets|spectrograms)/(?P<path>.+)$",
        views.alert_media,
        name="alert-media",
    ),
]
