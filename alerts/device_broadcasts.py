"""Device changes reach every dashboard at once: ``device.updated`` with the device's state
(``live_state.device_state``) when it goes online or offline or its row is saved (enabled,
disabled, renamed, moved), ``device.removed`` when it is deleted.

Receivers of ``devices.signals.device_connection_changed`` (sent after commit) and of the
``Device`` row's saves and deletes (broadcast after commit); they never raise.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from devices.models import Device
from devices.signals import device_connection_changed

from .broadcasting import send_to_group
from .live_state import one_device_state
from .services import ALERTS_GROUP

log = logging.getLogger(__name__)

DEVICE_UPDATED, DEVICE_REMOVED = "device.updated", "device.removed"


def broadcast_device(device_id: int) -> None:
    try:
        state = one_device_state(device_id)
        if state is None:
            message = {"type": DEVICE_REMOVED, "device_id": device_id}
        else:
            message = {"type": DEVICE_UPDATED, "device": state}
        send_to_group(ALERTS_GROUP, message)
    except Exception:
        log.exception("could not broadcast the state of device %s", device_id)


@receiver(device_connection_changed, dispatch_uid="alerts-device-connection")
def on_connection_changed(sender, device_id: int, state: str, **kwargs) -> None:
    broadcast_device(device_id)


@receiver(post_save, sender=Device, dispatch_uid="alerts-device-saved")
@receiver(post_delete, sender=Device, dispatch_uid="alerts-device-deleted")
def on_device_row(sender, instance: Device, **kwargs) -> None:
    device_id = instance.pk
    transaction.on_commit(lambda: broadcast_device(device_id))
