"""``/models/`` (admins): registered versions with their metrics, which is active where,
promote and rollback (globally or per site), retrain jobs, and the live figures from verdicts
with their plot over time. Changes are POST-redirect-GET; each says what happened."""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.audit import Actor
from accounts.permissions import admin_required
from devices.models import Device, Site

from . import services
from .figure_plots import daily_png, data_url
from .live_figures import live_figures
from .models import ModelVersion, RetrainJob


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _site(request) -> Site | None:
    site_id = _int(request.POST.get("site"))
    return Site.objects.filter(pk=site_id).first() if site_id is not None else None


@admin_required
@never_cache
def models_page(request):
    filters = {k: _int(request.GET.get(k)) for k in ("site", "device", "version")}
    days = _int(request.GET.get("days")) or 30
    figures = live_figures(days=days, **filters)
    choices = services.active_choices()
    sites = list(Site.objects.order_by("name"))
    site_names = {s.pk: s.name for s in sites}
    versions = []
    for version in ModelVersion.objects.select_related("created_by", "promoted_by", "parent"):
        where = [
            "global" if scope is None else f"site {site_names.get(scope, scope)}"
            for scope, active in choices.items()
            if active.pk == version.pk
        ]
        versions.append(
            {
                "row": version,
                "active_for": where,
                "metrics": json.dumps(version.metrics, indent=1, sort_keys=True)
                if version.metrics
                else "",
            }
        )
    overrides = [(site_names.get(k, k), v) for k, v in choices.items() if k is not None]
    return render(
        request,
        "registry/models.html",
        {
            "versions": versions,
            "global_active": choices.get(None),
            "overrides": overrides,
            "sites": sites,
            "devices": Device.objects.select_related("location__site").order_by("name"),
            "jobs": RetrainJob.objects.select_related("candidate", "requested_by")[:20],
            "figures": figures,
            "filters": filters,
            "days": figures["period"]["days"],
            "plot": data_url(daily_png(figures["daily"])),
        },
    )


@admin_required
@require_POST
def promote_view(request, number: int):
    version = get_object_or_404(ModelVersion, number=number)
    site = _site(request)
    try:
        services.promote(
            version, user=request.user, site=site, address=Actor.of_request(request).address
        )
    except services.PromotionError as exc:
        messages.error(request, f"Not promoted: {exc}")
    else:
        where = f"at {site.name}" if site else "globally"
        messages.success(request, f"Version {version.number} is active {where}.")
    return redirect("registry:models")


@admin_required
@require_POST
def rollback_view(request):
    site = _site(request)
    try:
        version = services.rollback(
            user=request.user, site=site, address=Actor.of_request(request).address
        )
    except services.PromotionError as exc:
        messages.error(request, f"Not rolled back: {exc}")
    else:
        where = f"at {site.name}" if site else "globally"
        messages.success(request, f"Rolled back: version {version.number} is active {where}.")
    return redirect("registry:models")


REPORT_FILE = re.compile(r"^[\w.-]+\.(png|md)$")


def _report_folder(number: int) -> Path:
    version = get_object_or_404(ModelVersion, number=number)
    if not version.report_path or not Path(version.report_path).is_dir():
        raise Http404("this version has no report")
    return Path(version.report_path)


@admin_required
@never_cache
def report_page(request, number: int):
    """A version's ``report.md`` (as text) and the pictures beside it."""
    folder = _report_folder(number)
    text = (
        (folder / "report.md").read_text(errors="replace")
        if (folder / "report.md").is_file()
        else ""
    )
    pictures = sorted(p.name for p in folder.glob("*.png") if p.is_file())
    return render(
        request,
        "registry/report.html",
        {"number": number, "folder": folder, "text": text, "pictures": pictures},
    )


@admin_required
def report_file(request, number: int, name: str):
    """One file of the report folder (``*.png``, ``*.md`` directly in it; nothing else)."""
    folder = _report_folder(number)
    path = folder / name
    if (
        not REPORT_FILE.match(name)
        or not path.is_file()
        or path.resolve().parent != folder.resolve()
    ):
        raise Http404("no such report file")
    return FileResponse(open(path, "rb"))  # noqa: SIM115 (closed by the response)
