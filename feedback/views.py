"""Admins' pages of the feedback app: the export's download and the retrain button."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import Actor, record
from accounts.permissions import admin_required
from alerts.task_queue import dispatch

from .export import export_archive
from .registry_link import JobBusy, new_job
from .tasks import retrain_job

MODELS_PAGE = "/models/"


def _since(request):
    raw = request.GET.get("since", "").strip()
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        raise ValueError(f"since: not a date and time: {raw!r}")
    return timezone.make_aware(value) if timezone.is_naive(value) else value


@require_GET
@admin_required
def export_download(request):
    """The feedback export as a zip (``?site=NAME&since=ISO-TIME`` narrow it)."""
    try:
        since = _since(request)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    site = request.GET.get("site", "").strip() or None
    archive, result = export_archive(site, since)
    record(
        Actor.of_request(request),
        "feedback_export",
        type_="feedback",
        details={"site": site, "since": since and since.isoformat(), "alerts": result.exported},
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    response = FileResponse(archive, as_attachment=True, filename=f"feedback-{stamp}.zip")
    response["X-Feedback-Alerts"] = str(result.exported)
    response["X-Feedback-Problems"] = str(len(result.problems))
    return response


def _number(request, name: str, cast, low, high):
    raw = request.POST.get(name, "").strip()
    if not raw:
        return None
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(f"{name}: a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: from {low} to {high}, got {value}")
    return value


@require_POST
@admin_required
def retrain(request):
    """Queue a retraining job (the models page's button) and go back to the models page."""
    try:
        options = {
            "epochs": _number(request, "epochs", int, 1, 200),
            "holdout_days": _number(request, "holdout_days", float, 0, 3650),
            "max_files": _number(request, "max_files", int, 2, 1_000_000),
            "max_eval_files": _number(request, "max_eval_files", int, 2, 1_000_000),
            "from_scratch": request.POST.get("from_scratch") in ("1", "on", "true"),
            "site": request.POST.get("site", "").strip() or None,
        }
    except ValueError as exc:
        messages.error(request, f"retraining not started: {exc}")
        return redirect(MODELS_PAGE)
    options = {k: v for k, v in options.items() if v is not None}
    try:
        with transaction.atomic():
            job = new_job(options, request.user)
            record(Actor.of_request(request), "retrain", job, details=options)
            transaction.on_commit(lambda: dispatch(retrain_job, job.pk))
    except JobBusy as exc:
        messages.error(request, f"retraining not started: {exc}")
        return redirect(MODELS_PAGE)
    messages.success(request, f"retraining job {job.pk} queued")
    return redirect(MODELS_PAGE)
