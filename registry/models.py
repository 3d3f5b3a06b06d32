"""Model versions (trained artifacts), which one is active (globally, per site), retrain jobs."""

from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone


class ModelVersion(models.Model):
    """One registered model artifact; its files are immutable once registered."""

    SHIPPED, REGISTERED, RETRAINED = "shipped", "registered", "retrained"
    SOURCES = [(SHIPPED, "shipped"), (REGISTERED, "registered"), (RETRAINED, "retrained")]

    number = models.PositiveIntegerField(unique=True)
    path = models.CharField(max_length=500, editable=False)
    checksum = models.CharField(max_length=64, unique=True)
    digest = models.CharField(max_length=64)
    source = models.CharField(max_length=12, choices=SOURCES, default=REGISTERED)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    data_description = models.TextField(blank=True)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    report_path = models.CharField(max_length=500, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"model v{self.number} ({self.digest})"

    @property
    def model_dir(self) -> Path:
        return Path(self.path)


class Activation(models.Model):
    """A change of the active version: globally (``site`` null) or for one site.

    The newest row of a scope is what that scope uses; a site row with no ``version`` means the
    site follows the global choice again. ``previous`` is what the scope used before the change
    (what a rollback returns to).
    """

    PROMOTE, ROLLBACK, SHIPPED = "promote", "rollback", "shipped"
    ACTIONS = [(PROMOTE, "promote"), (ROLLBACK, "rollback"), (SHIPPED, "shipped model")]

    site = models.ForeignKey(
        "devices.Site", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    previous = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=10, choices=ACTIONS)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["site", "-id"])]

    def __str__(self) -> str:
        scope = f"site {self.site_id}" if self.site_id else "global"
        version = f"v{self.version.number}" if self.version_id else "the global version"
        return f"{scope}: {self.action} {version}"


class RetrainJob(models.Model):
    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATUSES = [(QUEUED, "queued"), (RUNNING, "running"), (DONE, "done"), (FAILED, "failed")]

    status = models.CharField(max_length=10, choices=STATUSES, default=QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    options = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    candidate = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    log = models.TextField(blank=True)
    # The last sign of life: the row's last write (a run writes its progress as it goes); an
    # unfinished job silent for EYESCREAM_RETRAIN_STALE_S (30 min) is taken for dead.
    updated = models.DateTimeField(auto_now=True)
    # True while queued or running, None once ended: unique, so two requests at the same moment
    # cannot both start a job (NULLs do not collide).
    unfinished = models.BooleanField(null=True, default=True, editable=False)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["unfinished"], name="one_unfinished_retrain_job")
        ]

    def __str__(self) -> str:
        return f"retrain job {self.pk} ({self.status})"

    def end(self, status: str, message: str, **fields) -> None:
        """Mark the job ``done`` or ``failed`` with ``message`` (and other fields), for good."""
        self.status, self.message = status, message[:250]
        self.finished = timezone.now()
        self.unfinished = None
        for name, value in fields.items():
            setattr(self, name, value)
        self.save(update_fields=["status", "message", "finished", "unfinished", "updated", *fields])
