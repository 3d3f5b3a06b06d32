"""Celery tasks: fan an event out to its site's destinations, deliver one message with retries
and exponential back-off (a ``Delivery`` row per attempt), escalate unreviewed alerts."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from alerts.models import Alert
from devices.models import Device

from . import mail, webhook
from .events import ALERT_ESCALATED, ALERT_EVENTS, DEVICE_OFFLINE
from .models import (
    EMAIL,
    MQTT,
    WEBHOOK,
    Delivery,
    Destination,
    Escalation,
    EscalationPolicy,
    split_recipients,
)
from .mqtt_publish import Broker, Publication, publish
from .payloads import alert_message, alert_topic, availability_topic, device_message, site_of
from .queue import dispatch
from .sending import DeliveryError

log = logging.getLogger(__name__)

# Events sent once per alert: a second fan-out (a writer that stored the end again) sends none.
ONCE_PER_ALERT = ("alert.opened", "alert.ended", ALERT_ESCALATED)


def timeout_s() -> float:
    return float(getattr(settings, "EYESCREAM_DELIVERY_TIMEOUT_S", 5.0))


def max_attempts() -> int:
    return max(1, int(getattr(settings, "EYESCREAM_DELIVERY_ATTEMPTS", 5)))


def backoff_s(attempt: int) -> float:
    """The pause after failed attempt ``attempt`` (1, 2, …): base × 2^(attempt − 1), capped."""
    base = float(getattr(settings, "EYESCREAM_DELIVERY_BACKOFF_S", 10.0))
    cap = float(getattr(settings, "EYESCREAM_DELIVERY_BACKOFF_MAX_S", 600.0))
    return min(cap, base * 2 ** (attempt - 1))


# ------------------------------------------------------------------------------- fan-out


def _queue(destinations, message: dict) -> list[int]:
    for destination in destinations:
        dispatch(deliver, destination.pk, message, 1)
    return [d.pk for d in destinations]


@shared_task
def fan_out_alert_event(event: str, alert_id: int) -> list[int]:
    """One message about the alert, queued for each destination of its site that wants it."""
    alert = Alert.objects.select_related("device__location__site").filter(pk=alert_id).first()
    if alert is None:
        return []
    site = site_of(alert)
    if site is None:
        return []
    destinations = [d for d in Destination.objects.filter(site=site) if d.wants(event)]
    if event in ONCE_PER_ALERT:
        sent = set(
            Delivery.objects.filter(alert=alert, event=event, attempt=1).values_list(
                "destination_id", flat=True
            )
        )
        destinations = [d for d in destinations if d.pk not in sent]
    if not destinations:
        return []
    return _queue(destinations, alert_message(event, alert))


@shared_task
def fan_out_device_event(event: str, device_id: int) -> list[int]:
    """``device.online`` / ``device.offline`` for each destination of its site that wants it."""
    device = Device.objects.select_related("location__site").filter(pk=device_id).first()
    if device is None:
        return []
    wanted = Destination.objects.filter(site=device.location.site)
    destinations = [d for d in wanted if d.wants(event)]
    if not destinations:
        return []
    message = device_message(event, device)
    message["device"]["state"] = "offline" if event == DEVICE_OFFLINE else "online"
    return _queue(destinations, message)


# ------------------------------------------------------------------------------- delivery


def publications(destination: Destination, message: dict) -> list[Publication]:
    """Alert events: JSON on ``…/alert``; device events: the retained availability."""
    if message["type"] in ALERT_EVENTS:
        payload = json.dumps(message, separators=(",", ":"), sort_keys=True)
        return [Publication(alert_topic(destination.topic_prefix, message), payload)]
    topic = availability_topic(destination.topic_prefix, message)
    return [Publication(topic, message["device"]["state"], retain=True)]


def send(destination: Destination, message: dict) -> int | None:
    """One attempt; the receiver's status code where there is one, else ``DeliveryError``."""
    if destination.kind == WEBHOOK:
        return webhook.post(destination.url, destination.secret, message, timeout_s())
    if destination.kind == EMAIL:
        mail.send(split_recipients(destination.recipients), message, timeout_s())
        return None
    if destination.kind == MQTT:
        broker = Broker(
            destination.url,
            destination.username,
            destination.password,
            destination.ca_file,
            destination.tls_insecure,
        )
        publish(broker, publications(destination, message), timeout_s())
        return None
    raise DeliveryError(f"unknown destination kind {destination.kind!r}")


def _existing(model, pk) -> int | None:
    return pk if pk is not None and model.objects.filter(pk=pk).exists() else None


@shared_task
def deliver(destination_id: int, message: dict, attempt: int = 1) -> str | None:
    """Send ``message`` once; record the attempt; on failure queue the next after a back-off."""
    destination = Destination.objects.filter(pk=destination_id).first()
    if destination is None or not destination.enabled:
        return None
    started = time.monotonic()
    code, error = None, ""
    try:
        code = send(destination, message)
    except DeliveryError as failure:
        code, error = failure.response_code, str(failure)
    except Exception as failure:  # a sender's bug must still leave a record
        log.exception("delivery %s to destination %s failed", message["id"], destination_id)
        error = f"{type(failure).__name__}: {failure}"
    final = attempt >= max_attempts()
    status = Delivery.DELIVERED if not error else (Delivery.GAVE_UP if final else Delivery.FAILED)
    now = timezone.now()
    # One transaction: whoever reads the attempt's record sees the destination's state with it.
    with transaction.atomic():
        Delivery.objects.create(
            destination=destination,
            alert_id=_existing(Alert, (message.get("alert") or {}).get("id")),
            device_id=_existing(Device, message["device"].get("id")),
            event=message["type"],
            message_id=message["id"],
            attempt=attempt,
            status=status,
            response_code=code,
            error=error[:2000],
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        rows = Destination.objects.filter(pk=destination_id)
        if error:
            rows.update(last_status=status, last_error=error[:2000], last_error_at=now)
        else:
            rows.update(last_status=status, last_success_at=now)
    if error:
        log.warning(
            "delivery %s (%s) to %s, attempt %d: %s",
            message["id"],
            message["type"],
            destination,
            attempt,
            error,
        )
        if not final:
            dispatch(deliver, destination_id, message, attempt + 1, countdown=backoff_s(attempt))
    return status


# ------------------------------------------------------------------------------- escalation


@shared_task
def escalate_unreviewed_alerts() -> list[int]:
    """Alerts still ``new`` after their site's ``EscalationPolicy.after_minutes`` (and started
    after the policy was made): ``alert.escalated``, once per alert."""
    now = timezone.now()
    escalated = []
    for policy in EscalationPolicy.objects.filter(enabled=True).select_related("site"):
        due = (
            Alert.objects.filter(
                status=Alert.NEW,
                started_at__lte=now - timedelta(minutes=policy.after_minutes),
                started_at__gte=policy.created,
            )
            .filter(
                Q(device__location__site=policy.site)
                | Q(device__isnull=True, site_name=policy.site.name)
            )
            .exclude(pk__in=Escalation.objects.values("alert_id"))
        )
        for alert_id in due.values_list("pk", flat=True):
            try:
                Escalation.objects.create(alert_id=alert_id)
            except IntegrityError:  # another sweep took it
                continue
            dispatch(fan_out_alert_event, ALERT_ESCALATED, alert_id)
            escalated.append(alert_id)
    if escalated:
        log.info("escalated %d unreviewed alert(s): %s", len(escalated), escalated)
    return escalated
