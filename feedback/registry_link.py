"""Where retraining meets the model registry (``registry``): the active model, the job row,
and registering the candidate. Everything the ``feedback`` app asks of the registry goes
through these functions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices.models import Site
from registry import services as registry_services
from registry.models import ModelVersion, RetrainJob

RegistrationError = registry_services.RegistrationError


def active_version(site: str | None = None) -> ModelVersion | None:
    """The version that serves ``site`` (a site's name: its override, else the global one)."""
    row = Site.objects.filter(name=site).first() if site else None
    return registry_services.active_version(row)


def active_model_dir(site: str | None = None) -> Path:
    """The folder of the model that serves now (at ``site``): the registry's active version, or
    the shipped model folder while the registry holds none."""
    version = active_version(site)
    return Path(version.model_dir) if version is not None else Path(settings.EYESCREAM_MODEL_DIR)


def register_candidate(outcome, *, parent=None, created_by=None) -> ModelVersion:
    """Register a retraining run's candidate with its metrics and report; returns the new
    ``ModelVersion`` (``RegistrationError`` when it is refused)."""
    return registry_services.register_version(
        outcome.candidate_dir,
        parent=parent,
        data_description=outcome.description,
        metrics=outcome.metrics,
        report_dir=outcome.report_dir,
        created_by=created_by,
        source=ModelVersion.RETRAINED,
    )


def promote_candidate(version: ModelVersion, site: str | None = None) -> None:
    """Make a candidate active where its parent served (``site``'s override, else globally), as
    the automatic promotion rule does (audited as the system's)."""
    row = Site.objects.get(name=site) if site else None
    registry_services.promote(version, site=row)


class JobBusy(Exception):
    """Another retraining job is queued or running (one runs at a time)."""


def new_job(options: dict, user=None) -> RetrainJob:
    """A queued job (``JobBusy`` when another is unfinished, even one made at the same moment)."""
    busy = unfinished_job()
    if busy is not None:
        raise JobBusy(f"job {busy.pk} is {busy.status}")
    try:
        with transaction.atomic():
            return RetrainJob.objects.create(
                status=RetrainJob.QUEUED,
                progress=0.0,
                options=options,
                requested_by=user,
                message="queued",
            )
    except IntegrityError:  # the unique unfinished marker: another request won
        busy = unfinished_job()
        raise JobBusy(
            f"job {busy.pk} is {busy.status}" if busy else "another job started"
        ) from None


def get_job(job_id: int) -> RetrainJob:
    """The job (``RetrainJob.DoesNotExist`` when there is none)."""
    return RetrainJob.objects.get(pk=job_id)


def unfinished_job() -> RetrainJob | None:
    """A retraining job queued or running, if any (one runs at a time). A job silent for
    ``EYESCREAM_RETRAIN_STALE_S`` is ended as failed first: its process died with its worker, or
    no Celery worker ever took it, and it must not block every later job."""
    silent_since = timezone.now() - timedelta(seconds=settings.EYESCREAM_RETRAIN_STALE_S)
    minutes = settings.EYESCREAM_RETRAIN_STALE_S / 60
    stale = RetrainJob.objects.filter(unfinished=True, updated__lt=silent_since)
    for job in stale:
        why = (
            "never started: no Celery worker took it"
            if job.status == RetrainJob.QUEUED
            else "its process stopped reporting progress (killed with its worker?)"
        )
        job.end(RetrainJob.FAILED, f"failed after {minutes:g} min without a sign of life: {why}")
    return RetrainJob.objects.filter(unfinished=True).order_by("created").first()
