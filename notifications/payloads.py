"""The messages sent to destinations (contract version ``events.PAYLOAD_VERSION``, documented in
docs/integrations.md) and the MQTT topics they go to."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from alerts.models import Alert
from alerts.reviews import latest_review, review_user
from devices.models import Device, Site

from .events import PAYLOAD_VERSION


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def absolute_url(path: str) -> str:
    """``path`` under ``EYESCREAM_PUBLIC_URL`` (the address receivers reach the product at)."""
    return getattr(settings, "EYESCREAM_PUBLIC_URL", "").rstrip("/") + path


def event_id(alert_id: int) -> str:
    """The same for every message about one alert (opened, ended, reviewed, escalated)."""
    return f"alert-{alert_id}"


def site_of(alert: Alert) -> Site | None:
    if alert.device_id and alert.device is not None:
        return alert.device.location.site
    return Site.objects.filter(name=alert.site_name).first()


def site_dict(site: Site | None, name: str = "") -> dict:
    if site is None:
        return {"id": None, "name": name}
    return {"id": site.pk, "name": site.name}


def review_state(alert: Alert) -> dict:
    review = latest_review(alert) if alert.status != Alert.NEW else None
    return {
        "state": alert.status,
        "label": review.label if review else None,
        "label_name": review.get_label_display() if review else None,
        "user": review_user(review) if review else None,
        "note": review.note if review else None,
        "reviewed_at": _iso(review.created) if review else None,
    }


def new_message(event: str, site: dict, device: dict, alert: dict | None) -> dict:
    return {
        "version": PAYLOAD_VERSION,
        "id": str(uuid.uuid4()),
        "type": event,
        "created_at": timezone.now().isoformat(),
        "site": site,
        "device": device,
        "alert": alert,
    }


def alert_message(event: str, alert: Alert) -> dict:
    """The message about ``alert`` (fetched with ``device__location__site``)."""
    site = site_of(alert)
    return new_message(
        event,
        site_dict(site, alert.site_name),
        {
            "id": alert.device_id,
            "name": alert.device_name,
            "location": alert.location_name,
            "latitude": alert.latitude,
            "longitude": alert.longitude,
        },
        {
            "event_id": event_id(alert.pk),
            "id": alert.pk,
            "url": absolute_url(reverse("alert-detail", args=[alert.pk])),
            "started_at": _iso(alert.started_at),
            "ended_at": _iso(alert.ended_at),
            "open": alert.ended_at is None,
            "peak_score": alert.peak_score,
            "mean_score": alert.mean_score,
            "model_version": alert.model_version,
            "review": review_state(alert),
            "snippet_url": absolute_url(alert.snippet.url) if alert.snippet else None,
            "spectrogram_url": absolute_url(alert.spectrogram.url) if alert.spectrogram else None,
        },
    )


def device_message(event: str, device: Device) -> dict:
    """The message about ``device`` going online or offline."""
    return new_message(
        event,
        site_dict(device.location.site),
        {
            "id": device.pk,
            "name": device.name,
            "location": device.location.name,
            "state": device.connection_state,
            "last_seen": _iso(device.last_seen),
        },
        None,
    )


def topic_segment(name: str, fallback: str) -> str:
    """A name as one MQTT topic level: no ``/``, ``+``, ``#`` (a slug; ``fallback`` if empty)."""
    return slugify(name) or fallback


def topic_base(prefix: str, message: dict) -> str:
    site, device = message["site"], message["device"]
    return "/".join(
        (
            (prefix or "eyescream").strip("/"),
            topic_segment(site["name"], f"site-{site['id']}"),
            topic_segment(device["name"], f"device-{device['id']}"),
        )
    )


def alert_topic(prefix: str, message: dict) -> str:
    return topic_base(prefix, message) + "/alert"


def availability_topic(prefix: str, message: dict) -> str:
    return topic_base(prefix, message) + "/availability"
