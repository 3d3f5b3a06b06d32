"""Alerts (one per incident, with its audio snippet and spectrogram) and operators' reviews."""

from django.conf import settings
from django.db import models


class Alert(models.Model):
    """A detected incident at one device; where it was is copied at the time of the alert."""

    NEW, CONFIRMED, DISMISSED = "new", "confirmed", "dismissed"
    STATUSES = [(NEW, "new"), (CONFIRMED, "confirmed"), (DISMISSED, "dismissed")]

    # SET_NULL: deleting a device keeps its alert history (names and place are copied below).
    device = models.ForeignKey(
        "devices.Device", on_delete=models.SET_NULL, null=True, related_name="alerts"
    )
    device_name = models.CharField(max_length=200)
    site_name = models.CharField(max_length=200)
    location_name = models.CharField(max_length=200)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    # Position on the site's floor plan (fractions of its width and height), if known.
    location_x = models.FloatField(null=True, blank=True)
    location_y = models.FloatField(null=True, blank=True)

    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # null while the incident is open
    # "" when the live path ended the incident; STREAM_LOST when its stream died with it open
    # (a killed server, a lost connection) and the alert was closed at its last update.
    STREAM_LOST = "stream_lost"
    end_reason = models.CharField(max_length=20, blank=True)
    # Where the times come from: DEVICE (the device's capture clock) or ARRIVAL (when the audio
    # reached the server; a device that sends no capture time).
    DEVICE_TIME, ARRIVAL_TIME = "device", "arrival"
    time_source = models.CharField(max_length=10, blank=True)
    # The connection (channel name) whose stream opened the alert: while it is open, the alert
    # belongs to that stream, and a device whose connection is another one has lost it.
    stream = models.CharField(max_length=200, blank=True, editable=False)
    peak_score = models.FloatField()
    mean_score = models.FloatField()
    # [[seconds from the snippet's start, smoothed probability], ...] one pair per window.
    score_curve = models.JSONField(default=list, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    # The number of the registered model version (registry.ModelVersion.number) that scored
    # the incident; null for alerts from before the registry or from an unregistered model.
    model_number = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=NEW, db_index=True)

    snippet = models.FileField(upload_to="snippets/", blank=True)
    snippet_started_at = models.DateTimeField(null=True, blank=True)
    spectrogram = models.ImageField(upload_to="spectrograms/", blank=True)

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["device", "-started_at"])]

    def __str__(self) -> str:
        return f"alert {self.pk} at {self.device_name} ({self.started_at:%Y-%m-%d %H:%M:%S})"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class Review(models.Model):
    """An operator's verdict on an alert, in the data set's label scheme.

    A verdict is never edited or deleted: changing it adds a row, and withdrawing it (undo) adds
    a row with the label ``WITHDRAWN`` that puts the alert back to ``new``. The newest row is
    the alert's verdict; the rows before it are the history of who decided what, and when.
    """

    SCREAM = "1"
    WITHDRAWN = ""
    LABELS = [
        ("1", "scream"),
        ("0_0", "human sound, not a scream (cheering, shouting, laughing, singing)"),
        ("0_1", "non-human high-pitched sound (sirens, birds, cars, machines)"),
        ("0_2", "anything else (low sounds, background)"),
    ]

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    label = models.CharField(
        max_length=3, choices=[*LABELS, (WITHDRAWN, "verdict withdrawn")], blank=True
    )
    note = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"review of alert {self.alert_id}: {self.label}"
