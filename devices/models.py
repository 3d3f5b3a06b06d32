"""Sites, locations on them, and the devices (microphones) that stream from there."""

from django.db import models

from .fields import FiniteFloatField
from .sensitivity import DECISION_HELP, SENSITIVITY_HELP, SENSITIVITY_VALIDATORS, validate_decision
from .time_zones import default_time_zone, validate_time_zone


class Site(models.Model):
    """A monitored place: a street, a building, a station."""

    name = models.CharField(max_length=200, unique=True)
    address = models.TextField(blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    floor_plan = models.ImageField(upload_to="floor_plans/", blank=True)
    # Where the floor plan image lies on the map: [[south, west], [north, east]] (Leaflet order).
    floor_plan_bounds = models.JSONField(null=True, blank=True)
    # The site's local time (an IANA name): pages show its alerts' times in it, zone named.
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="IANA time zone name, such as Europe/Berlin; the pages show this site's "
        "times in it",
    )

    # How readily its streams alert (devices/sensitivity.py); a device's own settings win.
    sensitivity = models.FloatField(
        null=True, blank=True, validators=SENSITIVITY_VALIDATORS, help_text=SENSITIVITY_HELP
    )
    decision = models.JSONField(
        null=True, blank=True, validators=[validate_decision], help_text=DECISION_HELP
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """A spot on a site: geographic coordinates, or x/y on the site's floor plan."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="locations")
    name = models.CharField(max_length=200)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    # Position on the floor plan image, as fractions of its width and height (0..1).
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["site__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="unique_location_per_site")
        ]

    def __str__(self) -> str:
        return f"{self.site.name} / {self.name}"


class Device(models.Model):
    """A microphone that streams audio with its token; health is written by the ingest side."""

    OFFLINE, ONLINE = "offline", "online"
    STATES = [(OFFLINE, "offline"), (ONLINE, "online")]

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="devices")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    # How readily its stream alerts, over its site's (devices/sensitivity.py).
    sensitivity = models.FloatField(
        null=True, blank=True, validators=SENSITIVITY_VALIDATORS, help_text=SENSITIVITY_HELP
    )
    decision = models.JSONField(
        null=True, blank=True, validators=[validate_decision], help_text=DECISION_HELP
    )

    # The token: only its keyed hash (HMAC-SHA256, hex) is stored. None = no valid token.
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    token_created = models.DateTimeField(null=True, blank=True, editable=False)
    token_last_used = models.DateTimeField(null=True, blank=True, editable=False)
    token_expires = models.DateTimeField(null=True, blank=True)

    # Connection and stream health (batched writes by live.health, about once a second).
    connection_state = models.CharField(max_length=10, choices=STATES, default=OFFLINE)
    connection = models.CharField(max_length=200, blank=True, editable=False)
    client_name = models.CharField(max_length=100, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    frames_received = models.BigIntegerField(default=0)
    samples_received = models.BigIntegerField(default=0)
    seconds_received = models.FloatField(default=0.0)
    frames_rejected = models.BigIntegerField(default=0)
    windows = models.BigIntegerField(default=0)
    level_dbfs = FiniteFloatField(null=True, blank=True)
    clipping = models.BooleanField(default=False)
    last_error = models.CharField(max_length=200, blank=True)
    # Resume bookkeeping: the client's stream id and how many of its samples are stored.
    stream_id = models.CharField(max_length=64, blank=True)
    stream_samples = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["location__site__name", "location__name", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_token(self) -> bool:
        return bool(self.token_hash)
