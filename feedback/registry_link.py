"""Where retraining meets the model registry (``registry``): the active model, the job row,
and registering the candidate. Everything the ``feedback`` app asks of the registry goes
through these functions."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from registry import services as registry_services
from registry.models import RetrainJob


class RegistryUnavailable(RuntimeError):
    """The model registry is not installed."""


def active_model_dir() -> Path:
    """The folder of the model that serves now: the registry's global active version, or the
    shipped model folder while the registry holds none."""
    version = active_version()
    return Path(version.model_dir) if version is not None else Path(settings.EYESCREAM_MODEL_DIR)


def active_version():
    return None if registry_services is None else registry_services.active_version()


def register_candidate(outcome, *, parent=None, created_by=None):
    """Register a retraining run's candidate with its metrics and report; returns the new
    ``ModelVersion`` (``registry.services.RegistrationError`` when it is refused)."""
    if registry_services is None:
        raise RegistryUnavailable("the model registry is not installed: nothing to register with")
    return registry_services.register_version(
        outcome.candidate_dir,
        parent=parent,
        data_description=outcome.description,
        metrics=outcome.metrics,
        report_dir=outcome.report_dir,
        created_by=created_by,
    )


def registration_errors() -> tuple[type[Exception], ...]:
    if registry_services is None:
        return (RegistryUnavailable,)
    return (registry_services.RegistrationError, RegistryUnavailable)


def new_job(options: dict, user=None):
    if RetrainJob is None:
        raise RegistryUnavailable("the model registry is not installed: no retraining jobs")
    return RetrainJob.objects.create(
        status="queued", progress=0.0, options=options, requested_by=user, message="queued"
    )


def get_job(job_id: int):
    if RetrainJob is None:
        raise RegistryUnavailable("the model registry is not installed: no retraining jobs")
    return RetrainJob.objects.get(pk=job_id)


def unfinished_job():
    """A retraining job queued or running, if any (one runs at a time)."""
    if RetrainJob is None:
        return None
    return RetrainJob.objects.filter(status__in=("queued", "running")).order_by("created").first()
