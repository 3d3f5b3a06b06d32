"""``/healthz`` (the process answers), ``/readyz`` (it can do its work), ``/metrics``."""

import asyncio

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from . import metrics
from .readiness import checks_now


@never_cache
async def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
async def readyz(request):
    checks = await asyncio.to_thread(checks_now)
    reasons = [f"{name}: {c.detail}" for name, c in checks.items() if not c.ok]
    body = {
        "status": "not ready" if reasons else "ready",
        "reasons": reasons,
        "checks": {name: c.as_dict() for name, c in checks.items()},
    }
    return JsonResponse(body, status=503 if reasons else 200)


@never_cache
def metrics_view(request):
    if not metrics.allowed(request):
        return HttpResponse(
            "metrics: not allowed from here\n", status=403, content_type="text/plain"
        )
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
