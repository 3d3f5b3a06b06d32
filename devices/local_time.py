"""Which time zone a site's times are shown in: the site's own (``Site.time_zone``), or the
server's ``TIME_ZONE`` for a name no site has any more (an alert keeps its site's name)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from .models import Site


def site_zones(names: Iterable[str]) -> dict[str, str]:
    """Each site name's zone (one query); names of no site get the server's zone."""
    wanted = set(names)
    found = dict(Site.objects.filter(name__in=wanted).values_list("name", "time_zone"))
    return {name: found.get(name) or settings.TIME_ZONE for name in wanted}


def site_zone(name: str) -> str:
    return site_zones([name])[name]
