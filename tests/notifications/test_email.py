"""E-mail destinations: Django's locmem backend, and one real SMTP exchange (aiosmtpd)."""

import json
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.exceptions import ValidationError

from alerts.services import open_alert
from notifications.models import Delivery
from tests.alerts.conftest import alert_kwargs

from .conftest import destination, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_alert_is_mailed_to_every_recipient(inline, device):
    destination(device, "email", recipients="guard@example.org, lead@example.org")
    alert = open_alert(**alert_kwargs(device))

    (sent,) = mail.outbox
    assert sent.to == ["guard@example.org", "lead@example.org"]
    assert sent.subject == "[Eye-SCREAM] Scream alert: Central Station / Platform 3 / mic-3a"
    assert f"Event: alert-{alert.pk}" in sent.body
    assert f"https://eyescream.example/alerts/{alert.pk}/" in sent.body
    assert "Peak score: 0.97" in sent.body
    assert sent.extra_headers["X-Eyescream-Event"] == "alert.opened"
    assert Delivery.objects.get().status == "delivered"


def test_bad_recipients_are_refused_when_the_destination_is_saved(device):
    with pytest.raises(ValidationError, match="not an address"):
        destination(device, "email", recipients="guard@example.org, not-an-address")


class Inbox:
    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def test_an_alert_goes_through_a_real_smtp_server(inline, device, settings):
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.DEFAULT_FROM_EMAIL = "alerts@eyescream.example"
        destination(device, "email", recipients="guard@example.org")
        alert = open_alert(**alert_kwargs(device))
    finally:
        server.stop()
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "alerts@eyescream.example"
    assert envelope.rcpt_tos == ["guard@example.org"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"].startswith("[Eye-SCREAM] Scream alert: Central Station")
    text = message.get_payload(decode=True).decode()
    as_json = json.loads(text[text.index("{") :])
    assert as_json["alert"]["event_id"] == f"alert-{alert.pk}"
    assert Delivery.objects.get().status == "delivered"


def test_an_unreachable_smtp_server_is_reported(inline, device, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    box = destination(device, "email", recipients="guard@example.org")
    open_alert(**alert_kwargs(device))
    box.refresh_from_db()
    assert box.last_status == "gave_up" and "Connection refused" in box.last_error
