"""Roles are Django groups and API tokens are signed; the one table here is the audit trail."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what to which object, when and from where: written by the services, never edited.

    The actor is a user (kept by name if the user is deleted later), a device (by id and name:
    this layer knows no devices) or the system. The object is named by type (``app.model``), id
    and the name it had at the time, so an event outlives the object it speaks of.
    """

    USER, DEVICE, SYSTEM = "user", "device", "system"
    ACTOR_KINDS = [(USER, "user"), (DEVICE, "device"), (SYSTEM, "system")]

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_kind = models.CharField(max_length=10, choices=ACTOR_KINDS)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_device_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_name = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        who = self.actor_name or self.actor_kind
        return (
            f"{self.time:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.object_type} {self.object_id}"
        )
