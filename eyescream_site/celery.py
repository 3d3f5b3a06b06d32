"""Celery app. In embedded mode (no REDIS_URL) tasks run eagerly in-process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eyescream_site.settings")

app = Celery("eyescream_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work (retention purge, device-offline sweep) for `celery beat`.
from alerts.tasks import beat_schedule  # noqa: E402

app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **beat_schedule()}
