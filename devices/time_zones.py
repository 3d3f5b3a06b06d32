"""A site's time zone: an IANA name (``Europe/Berlin``), validated against the zone database.

Pages show an alert's times in its site's zone, with the zone named; the API and the database
keep ISO 8601 instants with their offset (docs/operations.md#time-zones).
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError


def default_time_zone() -> str:
    """A new site's zone: the server's ``TIME_ZONE``."""
    return settings.TIME_ZONE


@cache
def zone_names() -> list[str]:
    return sorted(available_timezones() | {"UTC"})


def validate_time_zone(name: str) -> None:
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValidationError("give an IANA time zone name, such as Europe/Berlin")
    if name not in zone_names():
        raise ValidationError(
            f"{name!r} is not a time zone this server knows: use an IANA name "
            "such as Europe/Berlin, Asia/Seoul or UTC"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not a time zone this server knows") from None
