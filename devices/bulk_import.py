"""Devices from a CSV file, all or none (``POST /api/devices/import/``).

Columns (a header row names them, in any order): ``site``, ``location``, ``name`` (required);
``latitude``, ``longitude`` (of the location, optional), ``enabled`` (``true``/``false``, default
true). A site or location named in a row is found by its name, or made (a new site takes the
first of its new locations' coordinates). Each device gets a token, returned once. Any bad row,
or a device of that name already at that location, stores nothing and says which rows and why.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from django.db import transaction

from accounts.audit import Actor, record

from .models import Device, Location, Site
from .services import issue_token

REQUIRED = ("site", "location", "name")
OPTIONAL = ("latitude", "longitude", "enabled")
MAX_ROWS = 5000
TRUE, FALSE = {"", "1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class ImportRejected(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class Row:
    line: int
    site: str
    location: str
    name: str
    latitude: float | None
    longitude: float | None
    enabled: bool


def parse(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise ImportRejected(
            [f"header: missing {', '.join(missing) or '-'}, unknown {', '.join(unknown) or '-'}"]
        )
    reader.fieldnames = header
    rows, errors = [], []
    for line, raw in enumerate(reader, start=2):
        if len(rows) >= MAX_ROWS:
            raise ImportRejected([f"more than {MAX_ROWS} rows"])
        values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            rows.append(_row(line, values))
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        raise ImportRejected(errors)
    if not rows:
        raise ImportRejected(["no rows"])
    return rows


def _row(line: int, values: dict[str, str]) -> Row:
    for column in REQUIRED:
        if not values.get(column):
            raise ValueError(f"{column} is empty")
        if len(values[column]) > 200:
            raise ValueError(f"{column} is longer than 200 characters")
    enabled = values.get("enabled", "").lower()
    if enabled not in TRUE | FALSE:
        raise ValueError(f"enabled must be true or false, not {enabled!r}")
    return Row(
        line,
        values["site"],
        values["location"],
        values["name"],
        _coordinate(values.get("latitude", ""), 90, "latitude"),
        _coordinate(values.get("longitude", ""), 180, "longitude"),
        enabled in TRUE,
    )


def _coordinate(text: str, limit: float, what: str) -> float | None:
    if not text:
        return None
    value = float(text)  # ValueError: reported with its line
    if not math.isfinite(value) or abs(value) > limit:
        raise ValueError(f"{what} {text} is out of range")
    return value


@transaction.atomic
def import_devices(text: str, actor: Actor | None = None) -> list[tuple[Device, str]]:
    """Store every row's device (and its missing site and location), each audited as made by
    ``actor``; ``[(device, token)]``."""
    rows = parse(text)
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        key = (row.site, row.location, row.name)
        if key in seen:
            raise ImportRejected(
                [f"line {row.line}: {row.name} at {row.site} / {row.location} twice"]
            )
        seen.add(key)
    sites: dict[str, Site] = {}
    locations: dict[tuple[str, str], Location] = {}
    made, errors = [], []
    for row in rows:
        site = sites.get(row.site)
        if site is None:
            site, created = Site.objects.get_or_create(
                name=row.site, defaults={"latitude": row.latitude, "longitude": row.longitude}
            )
            if created:
                record(actor, "create", site)
            sites[row.site] = site
        location = locations.get((row.site, row.location))
        if location is None:
            location, created = Location.objects.get_or_create(
                site=site,
                name=row.location,
                defaults={"latitude": row.latitude, "longitude": row.longitude},
            )
            if created:
                record(actor, "create", location)
            locations[(row.site, row.location)] = location
        if Device.objects.filter(location=location, name=row.name).exists():
            errors.append(f"line {row.line}: {row.name} at {row.site} / {row.location} exists")
            continue
        device = Device.objects.create(location=location, name=row.name, enabled=row.enabled)
        made.append((device, issue_token(device, None, actor, action="create")))
    if errors:
        raise ImportRejected(errors)  # the transaction stores none of them
    return made
