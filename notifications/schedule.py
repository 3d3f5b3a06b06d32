"""Periodic tasks of the notifications app for Celery beat (read before Django is set up, so
this module imports nothing but settings)."""

from __future__ import annotations

from django.conf import settings


def beat_schedule() -> dict:
    return {
        "notifications-escalation-sweep": {
            "task": "notifications.tasks.escalate_unreviewed_alerts",
            "schedule": float(getattr(settings, "EYESCREAM_ESCALATION_SWEEP_INTERVAL_S", 60)),
        },
    }
