"""Live streams re-check their access whenever their device row is saved or deleted."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Device
from .services import notify_device_changed


@receiver(post_save, sender=Device)
@receiver(post_delete, sender=Device)
def device_changed(sender, instance: Device, **kwargs) -> None:
    device_id = instance.pk
    transaction.on_commit(lambda: notify_device_changed(device_id))
