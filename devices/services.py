"""Device services: issue, rotate and revoke tokens, authenticate a hello, notify live streams.

Every change to a device row made through ``save()`` (admin, these services) or a delete sends
``device.check`` to the channel-layer group ``device-<id>``; the live stream re-reads its row and
closes if its token or the device is no longer valid (see ``access_error``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.admin.utils import NestedObjects
from django.db import transaction
from django.utils import timezone

from accounts.audit import Actor, record

from .models import Device
from .protocol import ProtocolError
from .tokens import hash_token, new_token, token_matches

log = logging.getLogger(__name__)


def device_group(device_id: int) -> str:
    return f"device-{device_id}"


def _expiry(expires: datetime | None) -> str | None:
    return expires.isoformat() if expires else None


def issue_token(
    device: Device,
    expires: datetime | None = None,
    actor: Actor | None = None,
    *,
    action: str = "rotate_token",
) -> str:
    """Give the device a new token (the old one stops working); return it, to show once.

    Audited as ``action``: ``create`` for a device registered with it, ``issue_token`` for the
    first token of a device the admin created, ``rotate_token`` otherwise.
    """
    token = new_token()
    with transaction.atomic():
        device.token_hash = hash_token(token, settings.DEVICE_TOKEN_KEY)
        device.token_created = timezone.now()
        device.token_last_used = None
        device.token_expires = expires
        device.save()
        record(actor, action, device, details={"token_expires": _expiry(expires)})
    log.info("issued a new token for device %s", device.pk)
    return token


def revoke_token(device: Device, actor: Actor | None = None) -> None:
    with transaction.atomic():
        device.token_hash = None
        device.save()
        record(actor, "revoke_token", device)
    log.info("revoked the token of device %s", device.pk)


def set_enabled(device: Device, enabled: bool, actor: Actor | None = None) -> None:
    """Enable or disable a device (disabling closes its live stream); audited either way."""
    with transaction.atomic():
        device.enabled = enabled
        device.save()
        record(actor, "enable" if enabled else "disable", device)


def save_audited(form, actor: Actor | None):
    """Save a model form (site, location) and audit it as ``create`` or ``change``."""
    created = form.instance.pk is None
    with transaction.atomic():
        obj = form.save()
        details = {} if created else {"fields": list(form.changed_data)}
        record(actor, "create" if created else "change", obj, details=details)
    return obj


@dataclass(frozen=True)
class DeviceAccess:
    """What a live stream needs to re-check its right to stream."""

    id: int
    enabled: bool
    token_hash: str | None
    token_expires: datetime | None


def access_error(
    row: DeviceAccess | None, token_hash: str, now: datetime, live: bool
) -> ProtocolError | None:
    """Why a stream authenticated with ``token_hash`` may not (go on) stream, or None."""
    if row is None or not row.token_hash or row.token_hash != token_hash:
        if live:
            return ProtocolError("token_revoked", "the device token was revoked or rotated")
        return ProtocolError("bad_token", "unknown or revoked device token")
    if row.token_expires is not None and row.token_expires <= now:
        return ProtocolError("token_expired", "the device token has expired")
    if not row.enabled:
        return ProtocolError("device_disabled", "the device is disabled")
    return None


def authenticate(token: str) -> Device:
    """The device a token belongs to, or ``ProtocolError`` (bad_token/expired/disabled)."""
    token_hash = hash_token(token, settings.DEVICE_TOKEN_KEY)
    device = Device.objects.filter(token_hash=token_hash).select_related("location").first()
    if device is None or not token_matches(token, device.token_hash, settings.DEVICE_TOKEN_KEY):
        raise ProtocolError("bad_token", "unknown or revoked device token")
    error = access_error(access_of(device), token_hash, timezone.now(), live=False)
    if error is not None:
        raise error
    return device


def access_of(device: Device) -> DeviceAccess:
    return DeviceAccess(device.pk, device.enabled, device.token_hash, device.token_expires)


def access_rows(device_ids) -> dict[int, DeviceAccess]:
    rows = Device.objects.filter(pk__in=list(device_ids)).values_list(
        "pk", "enabled", "token_hash", "token_expires"
    )
    return {row[0]: DeviceAccess(*row) for row in rows}


def notify_device_changed(device_id: int) -> None:
    """Tell a live stream of this device (in any process) to re-check its access."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(device_group(device_id), {"type": "device.check"})
    except Exception:  # the periodic check in live.health still closes it within 1 s
        log.exception("could not notify the live stream of device %s", device_id)


def mark_all_offline() -> list[int]:
    """Every device that looks online is offline: for a server starting with no stream alive
    (the embedded mode, whose streams all lived in the one process). Returns their ids."""
    online = Device.objects.filter(connection_state=Device.ONLINE)
    ids = list(online.values_list("pk", flat=True))
    online.filter(pk__in=ids).update(connection_state=Device.OFFLINE, connection="")
    return ids


@dataclass(frozen=True)
class Deletion:
    """What deleting an object would take with it, and what stops it (protected rows)."""

    removes: dict[str, int]  # verbose name (plural) -> how many, the object itself included
    blocked_by: list[str]  # e.g. "device mic-3a": rows that must be moved or deleted first

    @property
    def allowed(self) -> bool:
        return not self.blocked_by


def deletion_of(obj) -> Deletion:
    """Collect what a delete of ``obj`` would cascade to (no write). A location with devices
    (and so a site with devices) is protected: its devices must be moved or deleted first.
    Alerts are never deleted with a device: they keep its name and place."""
    collector = NestedObjects(using="default")
    collector.collect([obj])
    removes = {
        str(model._meta.verbose_name_plural): len(rows)
        for model, rows in collector.model_objs.items()
        if rows
    }
    blocked = sorted(f"{p._meta.verbose_name} {p}" for p in collector.protected)
    return Deletion(removes, blocked)


class DeleteRefused(Exception):
    """The object has rows that protect it (``Deletion.blocked_by``)."""


def delete_audited(obj, actor: Actor | None) -> None:
    """Delete ``obj`` (a site, location or device) and audit it as ``delete`` with what went with
    it, in one transaction; ``DeleteRefused`` if protected rows stand in the way."""
    deletion = deletion_of(obj)
    if not deletion.allowed:
        raise DeleteRefused("; ".join(deletion.blocked_by))
    with transaction.atomic():
        record(actor, "delete", obj, details={"removed": deletion.removes})
        obj.delete()
    log.info("deleted %s %s", obj._meta.label_lower, obj)
