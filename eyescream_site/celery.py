"""Celery app. In embedded mode (no REDIS_URL) tasks run eagerly in-process."""

import os

from celery import Celery
from celery.signals import task_failure, task_success, worker_init

from eyescream_site.task_metrics import count_failure, count_success

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eyescream_site.settings")

app = Celery("eyescream_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work (retention purge, device-offline sweep, escalation) for `celery beat`.
from alerts.schedule import beat_schedule  # noqa: E402
from notifications.schedule import beat_schedule as notification_schedule  # noqa: E402

app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    **beat_schedule(),
    **notification_schedule(),
}

# /metrics: task outcomes, in the worker (or, eager, in the process that ran the task).
task_failure.connect(count_failure, weak=False)
task_success.connect(count_success, weak=False)


@worker_init.connect
def prepare_the_worker(**_) -> None:
    """Before the pool starts, whose processes inherit both: ``EYESCREAM_TASK_PRIORITY``, and
    what the alert pictures need, loaded once here instead of in each pool process."""
    import logging

    from django.conf import settings

    from alerts.images import prepare_pictures
    from eyescream_site.cpu_priority import apply_task_priority

    apply_task_priority()
    if settings.EYESCREAM_ALERT_IMAGES:
        seconds = prepare_pictures(settings.EYESCREAM_MODEL_DIR)
        logging.getLogger(__name__).info("pictures prepared in %.1f s", seconds)
