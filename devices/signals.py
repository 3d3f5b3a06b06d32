"""Device signals: live streams re-check their access whenever their device row is saved or
deleted; ``device_connection_changed`` tells who listens that a device went online or offline."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from .models import Device
from .services import notify_device_changed

log = logging.getLogger(__name__)

# Sent after commit with ``device_id`` and ``state`` (``Device.ONLINE`` or ``Device.OFFLINE``).
device_connection_changed = Signal()


def connection_changed(device_id: int, state: str) -> None:
    """Send ``device_connection_changed`` after the current transaction commits; never raises."""

    def send() -> None:
        results = device_connection_changed.send_robust(Device, device_id=device_id, state=state)
        for _receiver, error in results:
            if isinstance(error, Exception):
                log.error("a receiver of device %s going %s failed: %r", device_id, state, error)

    transaction.on_commit(send)


@receiver(post_save, sender=Device)
@receiver(post_delete, sender=Device)
def device_changed(sender, instance: Device, **kwargs) -> None:
    device_id = instance.pk
    transaction.on_commit(lambda: notify_device_changed(device_id))
