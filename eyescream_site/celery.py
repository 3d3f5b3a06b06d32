"""Celery app. In embedded mode (no REDIS_URL) tasks run eagerly in-process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eyescream_site.settings")

app = Celery("eyescream_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
