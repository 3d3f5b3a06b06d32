"""Celery task outcomes for ``/metrics`` (connected to Celery's signals in ``celery.py``)."""

from prometheus_client import Counter

TASKS_FAILED = Counter(
    "eyescream_celery_task_failures", "Celery task runs that raised (each attempt)", ["task"]
)
TASKS_SUCCEEDED = Counter(
    "eyescream_celery_tasks_succeeded", "Celery task runs that ended well", ["task"]
)


def count_failure(sender=None, **_) -> None:
    TASKS_FAILED.labels(getattr(sender, "name", "unknown")).inc()


def count_success(sender=None, **_) -> None:
    TASKS_SUCCEEDED.labels(getattr(sender, "name", "unknown")).inc()
