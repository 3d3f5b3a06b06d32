"""What a dashboard starts from: every device's state and the alerts that need attention.

The dashboard WebSocket sends this snapshot when a page asks (on every connect, and again when
the page sees a gap in the broadcasts' sequence numbers); broadcasts then bring the changes
(``device.updated``, ``device.removed``, ``alert.created``, ``alert.updated``). The same device
dict goes into the live map's page and into ``device.updated``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from devices.models import Device
from devices.positions import location_latlng

from .models import Alert
from .reviews import alert_payloads

RECENT_ALERTS = 50
MAX_SNAPSHOT_ALERTS = 1000  # of each kind (unreviewed, newer than the page's newest, known)
MAX_KNOWN = 500


def device_state(device: Device, new_alerts: list[int]) -> dict:
    location = device.location
    lat, lng = location_latlng(location, location.site)
    return {
        "id": device.pk,
        "name": device.name,
        "site": location.site.name,
        "location": location.name,
        "latitude": lat,
        "longitude": lng,
        "enabled": device.enabled,
        "state": device.connection_state,
        "last_seen": device.last_seen.isoformat() if device.last_seen else None,
        "level_dbfs": device.level_dbfs,
        "new_alerts": new_alerts,
        "alerting": bool(new_alerts),
    }


def new_alerts_by_device(device_ids: Iterable[int] | None = None) -> dict[int, list[int]]:
    """The unreviewed alerts of each device (of ``device_ids``, or of all)."""
    rows = Alert.objects.filter(status=Alert.NEW)
    if device_ids is not None:
        rows = rows.filter(device__in=list(device_ids))
    found: dict[int, list[int]] = {}
    for device_id, alert_id in rows.order_by("pk").values_list("device", "pk"):
        found.setdefault(device_id, []).append(alert_id)
    return found


def device_states(devices: Iterable[Device] | None = None) -> list[dict]:
    if devices is None:
        devices = Device.objects.select_related("location__site")
    devices = list(devices)
    new = new_alerts_by_device([d.pk for d in devices])
    return [device_state(d, new.get(d.pk, [])) for d in devices]


def one_device_state(device_id: int) -> dict | None:
    device = Device.objects.select_related("location__site").filter(pk=device_id).first()
    return device_states([device])[0] if device is not None else None


def snapshot(since_id: int = 0, known: Iterable[int] = ()) -> dict:
    """Devices, the alerts a page must show, and which of the ones it ``known`` are gone.

    Alerts: every unreviewed or still open one, the most recent ``RECENT_ALERTS``, those newer
    than ``since_id`` (the page's newest), and the page's ``known`` ones as they are now; up to
    ``MAX_SNAPSHOT_ALERTS`` of each kind, newest first. ``new_count`` counts every unreviewed
    alert, also those past the cap.
    """
    known = sorted({int(k) for k in known})[-MAX_KNOWN:]
    ids: set[int] = set()
    pending = Alert.objects.filter(Q(status=Alert.NEW) | Q(ended_at__isnull=True))
    ids.update(pending.order_by("-pk").values_list("pk", flat=True)[:MAX_SNAPSHOT_ALERTS])
    ids.update(Alert.objects.values_list("pk", flat=True)[:RECENT_ALERTS])
    if since_id:
        newer = Alert.objects.filter(pk__gt=since_id).order_by("-pk")
        ids.update(newer.values_list("pk", flat=True)[:MAX_SNAPSHOT_ALERTS])
    ids.update(known)
    alerts = list(Alert.objects.filter(pk__in=ids).order_by("-started_at", "-pk"))
    found = {a.pk for a in alerts}
    return {
        "devices": device_states(),
        "alerts": alert_payloads(alerts),
        "removed": [k for k in known if k not in found],
        "new_count": Alert.objects.filter(status=Alert.NEW).count(),
        "last_id": max(found, default=0),
    }
