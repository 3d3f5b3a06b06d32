"""From the removed global ``EYESCREAM_ALERT_WEBHOOK_URL`` to per-site webhook destinations:
a start-up warning while the variable is still set, and the destinations it becomes."""

from __future__ import annotations

import os
import secrets

from django.core.checks import Warning, register

from devices.models import Site

from .events import ALERT_ENDED, ALERT_OPENED
from .models import WEBHOOK, Destination

OLD_SETTING = "EYESCREAM_ALERT_WEBHOOK_URL"
IMPORTED_NAME = "webhook (was EYESCREAM_ALERT_WEBHOOK_URL)"


@register()
def old_webhook_setting(app_configs, **kwargs) -> list[Warning]:
    if not os.environ.get(OLD_SETTING):
        return []
    return [
        Warning(
            f"{OLD_SETTING} is no longer read: nothing is posted to it.",
            hint="Run `manage.py import_webhook_setting` to make it a signed webhook destination "
            f"of every site, then unset {OLD_SETTING} (docs/integrations.md).",
            id="notifications.W001",
        )
    ]


def import_webhook_setting(url: str, sites=None, secret: str = "") -> list[Destination]:
    """A webhook destination for ``url`` (alert opened and ended) on each site that has none
    of that name yet; returns those made. All share one secret (``secret`` or a new one)."""
    secret = secret or secrets.token_urlsafe(32)
    made = []
    for site in sites if sites is not None else Site.objects.all():
        if Destination.objects.filter(site=site, name=IMPORTED_NAME).exists():
            continue
        destination = Destination(
            site=site,
            name=IMPORTED_NAME,
            kind=WEBHOOK,
            url=url,
            secret=secret,
            events=[ALERT_OPENED, ALERT_ENDED],
        )
        destination.full_clean()
        destination.save()
        made.append(destination)
    return made
