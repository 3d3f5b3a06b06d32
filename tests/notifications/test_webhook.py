"""Webhook destinations against a local HTTP receiver: signed, retried, recorded, timed out."""

import json
import time

import pytest

from alerts.services import open_alert, update_alert
from notifications.models import Delivery
from notifications.signing import SIGNATURE_HEADER, signature_header, verify
from tests.alerts.conftest import alert_kwargs

from .conftest import destination, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-for-the-hub"


def test_the_signature_verifies_with_the_secret_and_not_otherwise():
    body = b'{"type":"alert.opened"}'
    header = signature_header(SECRET, body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, header, body, now=1_700_000_010)
    assert not verify("another secret", header, body, now=1_700_000_010)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_010)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # too old: a replay
    assert not verify(SECRET, "v1=abc", body, now=1_700_000_000)


def test_an_opened_alert_is_posted_signed_and_recorded(inline, device, receiver):
    hub = receiver()
    hook = destination(device, "webhook", url=hub.url, secret=SECRET)
    alert = open_alert(**alert_kwargs(device))

    assert len(hub.requests) == 1
    headers, body = hub.requests[0]
    assert verify(SECRET, headers[SIGNATURE_HEADER.lower()], body)
    assert not verify("wrong", headers[SIGNATURE_HEADER.lower()], body)
    message = json.loads(body)
    assert headers["x-eyescream-event"] == message["type"] == "alert.opened"
    assert headers["x-eyescream-delivery"] == message["id"]
    assert message["version"] == 1
    assert message["site"] == {"id": device.location.site_id, "name": "Central Station"}
    assert message["device"]["name"] == "mic-3a" and message["device"]["location"] == "Platform 3"
    body_alert = message["alert"]
    assert body_alert["event_id"] == f"alert-{alert.pk}" and body_alert["open"] is True
    assert body_alert["peak_score"] == pytest.approx(0.97)
    assert body_alert["model_version"] == "abc123def456"
    assert body_alert["review"]["state"] == "new"
    assert body_alert["snippet_url"].startswith("https://eyescream.example/media/snippets/")
    assert body_alert["url"] == f"https://eyescream.example/alerts/{alert.pk}/"

    (delivery,) = Delivery.objects.all()
    assert (delivery.destination_id, delivery.alert_id, delivery.event) == (
        hook.pk,
        alert.pk,
        "alert.opened",
    )
    assert (delivery.status, delivery.response_code, delivery.attempt) == ("delivered", 200, 1)
    hook.refresh_from_db()
    assert hook.last_status == "delivered" and hook.last_success_at is not None


def test_a_500_is_retried_and_exactly_one_delivery_succeeds(inline, device, receiver):
    hub = receiver(statuses=[500])
    destination(device, "webhook", url=hub.url, secret=SECRET)
    alert = open_alert(**alert_kwargs(device))

    attempts = list(Delivery.objects.order_by("attempt"))
    assert [(d.attempt, d.status, d.response_code) for d in attempts] == [
        (1, "failed", 500),
        (2, "delivered", 200),
    ]
    assert "HTTP 500" in attempts[0].error and "nope" in attempts[0].error
    assert Delivery.objects.filter(status="delivered").count() == 1
    # The same message both times (the receiver can drop a duplicate by its id).
    ids = {headers["x-eyescream-delivery"] for headers, _body in hub.requests}
    assert ids == {attempts[0].message_id} == {attempts[1].message_id}
    assert {m["alert"]["id"] for m in hub.messages()} == {alert.pk}


def test_it_gives_up_after_the_last_attempt_and_says_why(inline, device, receiver):
    hub = receiver(statuses=[503] * 10)
    hook = destination(device, "webhook", url=hub.url)
    started = time.monotonic()
    open_alert(**alert_kwargs(device))
    assert [d.status for d in Delivery.objects.order_by("attempt")] == [
        "failed",
        "failed",
        "gave_up",
    ]
    assert time.monotonic() - started >= 0.05 + 0.1  # back-off: 0.05 s, then 0.1 s
    hook.refresh_from_db()
    assert hook.last_status == "gave_up" and "HTTP 503" in hook.last_error


def test_an_end_goes_out_once_and_running_updates_do_not(inline, device, receiver):
    hub = receiver()
    destination(device, "webhook", url=hub.url, events=["alert.opened", "alert.ended"])
    alert = open_alert(**alert_kwargs(device))
    kwargs = dict(peak_score=0.98, mean_score=0.8, score_curve=[[2.0, 0.9]])
    update_alert(alert.pk, **kwargs)  # still running: no message
    update_alert(alert.pk, ended_at=alert.started_at.replace(second=9), **kwargs)
    update_alert(alert.pk, ended_at=alert.started_at.replace(second=9), **kwargs)  # again
    messages = hub.messages()
    assert [m["type"] for m in messages] == ["alert.opened", "alert.ended"]
    assert messages[1]["alert"]["ended_at"].endswith("12:00:09+00:00")
    assert {m["alert"]["event_id"] for m in messages} == {f"alert-{alert.pk}"}


def test_a_destination_gets_only_the_events_it_chose(inline, device, receiver):
    hub = receiver()
    destination(device, "webhook", url=hub.url, events=["alert.reviewed"])
    open_alert(**alert_kwargs(device))
    assert hub.requests == [] and not Delivery.objects.exists()


def test_a_hanging_receiver_times_out_without_delaying_the_alert_or_others(
    settings_for_delivery, device, receiver
):
    settings_for_delivery.EYESCREAM_DELIVERY_TIMEOUT_S = 2.0
    settings_for_delivery.EYESCREAM_DELIVERY_ATTEMPTS = 1
    hanging, quick = receiver(delay_s=6.0), receiver()
    slow = destination(device, "webhook", name="hanging", url=hanging.url)
    fast = destination(device, "webhook", name="quick", url=quick.url)

    started = time.monotonic()
    alert = open_alert(**alert_kwargs(device))
    assert time.monotonic() - started < 1.0  # far less than the 2 s timeout

    delivered = wait_for(lambda: Delivery.objects.filter(destination=fast).first(), timeout=5)
    assert delivered.status == "delivered" and delivered.alert_id == alert.pk
    assert not Delivery.objects.filter(destination=slow).exists()  # still waiting for it
    failed = wait_for(lambda: Delivery.objects.filter(destination=slow).first(), timeout=10)
    assert failed.status == "gave_up" and "timed out" in failed.error
    assert failed.created > delivered.created
    slow.refresh_from_db()
    assert "timed out" in slow.last_error and slow.last_error_at is not None
