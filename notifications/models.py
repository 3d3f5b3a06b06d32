"""Destinations per site, a Delivery row per attempt, escalation policies and their marks."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from .events import EVENT_NAMES, EVENT_TYPES

WEBHOOK, EMAIL, MQTT = "webhook", "email", "mqtt"
KINDS = [(WEBHOOK, "webhook (signed HTTP POST)"), (EMAIL, "e-mail"), (MQTT, "MQTT broker")]
MQTT_SCHEMES = {"mqtt": 1883, "mqtts": 8883}


def default_events() -> list[str]:
    return list(EVENT_NAMES)


def check_webhook_url(url: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": f"a webhook needs an http:// or https:// URL, got {url!r}"})


def check_broker_url(url: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in MQTT_SCHEMES or not parts.hostname:
        raise ValidationError(
            {"url": f"a broker URL is mqtt://host[:port] or mqtts://…, got {url!r}"}
        )
    try:
        parts.port  # noqa: B018  (raises on a port that is no number or out of range)
    except ValueError as error:
        raise ValidationError({"url": f"bad port in {url!r}: {error}"}) from None


def split_recipients(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]


class Destination(models.Model):
    """Where a site's events go: a webhook, e-mail recipients or an MQTT broker."""

    site = models.ForeignKey("devices.Site", on_delete=models.CASCADE, related_name="destinations")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=KINDS)
    enabled = models.BooleanField(default=True)
    events = models.JSONField(
        default=default_events,
        help_text="event types sent here: " + ", ".join(name for name, _ in EVENT_TYPES),
    )
    # webhook: the URL and the signing secret; MQTT: mqtt://host:port or mqtts://host:port.
    url = models.CharField(max_length=500, blank=True)
    secret = models.CharField(
        max_length=200, blank=True, help_text="webhook: HMAC-SHA256 key of the signature header"
    )
    recipients = models.TextField(blank=True, help_text="e-mail: addresses, comma-separated")
    topic_prefix = models.CharField(max_length=100, blank=True, default="eyescream")
    username = models.CharField(max_length=100, blank=True, help_text="MQTT user")
    password = models.CharField(max_length=200, blank=True, help_text="MQTT password")
    ca_file = models.CharField(
        max_length=500, blank=True, help_text="mqtts: CA bundle path (empty: the system's)"
    )
    tls_insecure = models.BooleanField(
        default=False, help_text="mqtts: do not check the broker's host name"
    )

    # What the last attempt did (the destination's page shows it).
    last_status = models.CharField(max_length=12, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="unique_destination_per_site")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        unknown = sorted(set(self.events or []) - set(EVENT_NAMES))
        if not isinstance(self.events, list) or unknown:
            raise ValidationError({"events": f"unknown event types {unknown}: use {EVENT_NAMES}"})
        if self.kind == WEBHOOK:
            check_webhook_url(self.url)
        elif self.kind == MQTT:
            check_broker_url(self.url)
        elif self.kind == EMAIL:
            addresses = split_recipients(self.recipients)
            if not addresses:
                raise ValidationError({"recipients": "at least one e-mail address"})
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    raise ValidationError({"recipients": f"not an address: {address!r}"}) from None

    def wants(self, event: str) -> bool:
        return self.enabled and event in (self.events or [])


class Delivery(models.Model):
    """One attempt to send one message to one destination."""

    DELIVERED, FAILED, GAVE_UP = "delivered", "failed", "gave_up"
    STATUSES = [
        (DELIVERED, "delivered"),
        (FAILED, "failed, will retry"),
        (GAVE_UP, "failed, no more retries"),
    ]

    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="deliveries"
    )
    alert = models.ForeignKey(
        "alerts.Alert", on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    device = models.ForeignKey(
        "devices.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event = models.CharField(max_length=20)
    message_id = models.CharField(max_length=36, db_index=True)
    attempt = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=STATUSES)
    response_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.destination_id}, attempt {self.attempt}: {self.status}"


class EscalationPolicy(models.Model):
    """A site's alerts still unreviewed after ``after_minutes`` go out again as
    ``alert.escalated`` to the site's destinations that subscribe to that event."""

    site = models.OneToOneField(
        "devices.Site", on_delete=models.CASCADE, related_name="escalation_policy"
    )
    after_minutes = models.PositiveIntegerField(default=10)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return f"{self.site}: escalate after {self.after_minutes} min"

    def clean(self) -> None:
        if not self.after_minutes:
            raise ValidationError({"after_minutes": "at least one minute"})


class Escalation(models.Model):
    """An alert escalated once (the unique alert keeps two sweeps from escalating it twice)."""

    alert = models.OneToOneField("alerts.Alert", on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"alert {self.alert_id} escalated at {self.created:%Y-%m-%d %H:%M}"
