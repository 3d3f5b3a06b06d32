"""``/healthz`` (the process answers), ``/readyz`` (it can do its work), ``/metrics``."""

import asyncio
import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from . import metrics
from .readiness import checks_now

log = logging.getLogger(__name__)
_last_reasons: list[str] = []


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
    _log_change(reasons)
    response = JsonResponse(body, status=503 if reasons else 200)
    # Not ready is a state, logged when it changes (above), not an error of this request:
    # every dashboard polls /readyz, and Django would log each 503 as an ERROR.
    response._has_been_logged = True
    return response


def _log_change(reasons: list[str]) -> None:
    global _last_reasons
    if reasons == _last_reasons:
        return
    if reasons:
        log.warning("not ready: %s", "; ".join(reasons))
    else:
        log.info("ready again")
    _last_reasons = reasons


@never_cache
def metrics_view(request):
    if not metrics.allowed(request):
        return HttpResponse(
            "metrics: not allowed from here\n", status=403, content_type="text/plain"
        )
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
