"""Periodic tasks for Celery beat: read by ``eyescream_site/celery.py`` before Django is set up,
so this module imports nothing but settings."""

from __future__ import annotations

from django.conf import settings


def beat_schedule() -> dict:
    """Periodic tasks for Celery beat (merge into ``app.conf.beat_schedule``)."""
    return {
        "alerts-retention-purge": {
            "task": "alerts.tasks.purge_old_alerts",
            "schedule": float(getattr(settings, "EYESCREAM_PURGE_INTERVAL_S", 3600)),
        },
        "devices-offline-sweep": {
            "task": "alerts.tasks.sweep_offline_devices",
            "schedule": float(getattr(settings, "EYESCREAM_OFFLINE_SWEEP_INTERVAL_S", 30)),
        },
    }
