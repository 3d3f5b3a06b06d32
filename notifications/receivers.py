"""Signal receivers: alert and device events become fan-out tasks, queued without waiting.

They run on the alert path (after its commit) and on the ingest path, so each only queues a
task (``queue.dispatch`` never raises or blocks); the destinations are looked up by the task.
"""

from __future__ import annotations

from django.dispatch import receiver

from alerts.models import Alert
from alerts.services import CREATED, UPDATED
from alerts.signals import alert_reviewed, alert_stored
from devices.models import Device
from devices.signals import device_connection_changed

from .events import ALERT_ENDED, ALERT_OPENED, ALERT_REVIEWED, DEVICE_OFFLINE, DEVICE_ONLINE
from .queue import dispatch
from .tasks import fan_out_alert_event, fan_out_device_event


def alert_event(event_type: str, alert: Alert) -> str | None:
    """The notification event of a stored alert: opened, ended, or none (a running update)."""
    if event_type == CREATED:
        return ALERT_OPENED
    if event_type == UPDATED and alert.ended_at is not None:
        return ALERT_ENDED
    return None


@receiver(alert_stored, dispatch_uid="notifications-alert-stored")
def on_alert_stored(sender, event_type: str, alert: Alert, **kwargs) -> None:
    event = alert_event(event_type, alert)
    if event is not None:
        dispatch(fan_out_alert_event, event, alert.pk)


@receiver(alert_reviewed, dispatch_uid="notifications-alert-reviewed")
def on_alert_reviewed(sender, alert: Alert, **kwargs) -> None:
    dispatch(fan_out_alert_event, ALERT_REVIEWED, alert.pk)


@receiver(device_connection_changed, dispatch_uid="notifications-device-connection")
def on_device_connection_changed(sender, device_id: int, state: str, **kwargs) -> None:
    event = DEVICE_ONLINE if state == Device.ONLINE else DEVICE_OFFLINE
    dispatch(fan_out_device_event, event, device_id)
