"""Send a message as e-mail through Django's mail backend (SMTP settings from the environment)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from .sending import DeliveryError

SUBJECTS = {
    "alert.opened": "Scream alert",
    "alert.ended": "Scream alert ended",
    "alert.reviewed": "Scream alert reviewed",
    "alert.escalated": "UNREVIEWED scream alert",
    "device.offline": "Microphone offline",
    "device.online": "Microphone online",
}


def subject(message: dict) -> str:
    site, device = message["site"]["name"], message["device"]
    place = f"{site} / {device.get('location') or '-'} / {device['name']}"
    return f"[Eye-SCREAM] {SUBJECTS.get(message['type'], message['type'])}: {place}"


def body(message: dict) -> str:
    lines = [subject(message), ""]
    alert = message.get("alert")
    if alert:
        review = alert["review"]
        lines += [
            f"Event: {alert['event_id']}",
            f"Started: {alert['started_at']}",
            f"Ended: {alert['ended_at'] or 'still open'}",
            f"Peak score: {alert['peak_score']:.2f}",
            f"Model: {alert['model_version'] or 'unknown'}",
            f"Review: {review['state']}"
            + (f" by {review['user']} ({review['label_name']})" if review["user"] else ""),
            f"Alert: {alert['url']}",
            f"Audio: {alert['snippet_url'] or 'none'}",
        ]
    else:
        lines += [f"Device state: {message['device']['state']}"]
    lines += ["", "The message as JSON:", json.dumps(message, indent=2, sort_keys=True)]
    return "\n".join(lines) + "\n"


def send(recipients: list[str], message: dict, timeout_s: float) -> None:
    connection = get_connection(timeout=timeout_s)
    email = EmailMessage(
        subject(message),
        body(message),
        settings.DEFAULT_FROM_EMAIL,
        recipients,
        headers={"X-Eyescream-Event": message["type"], "X-Eyescream-Delivery": message["id"]},
        connection=connection,
    )
    try:
        email.send(fail_silently=False)
    except (OSError, ValueError) as error:  # smtplib's errors are OSErrors
        code = getattr(error, "smtp_code", None)
        raise DeliveryError(f"{type(error).__name__}: {error}", code) from None
