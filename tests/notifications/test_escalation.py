"""Escalation: an alert still unreviewed after the site's N minutes goes out again, once."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from alerts.reviews import review_alert
from alerts.services import open_alert
from devices.models import Location, Site
from notifications.models import Delivery, EscalationPolicy
from notifications.schedule import beat_schedule
from notifications.tasks import escalate_unreviewed_alerts
from tests.alerts.conftest import alert_kwargs

from .conftest import destination

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_unreviewed_alert_is_escalated_once_after_the_sites_minutes(inline, device, receiver):
    hub, duty = receiver(), receiver()
    destination(device, "webhook", name="control room", url=hub.url, events=["alert.opened"])
    duty_officer = destination(
        device, "webhook", name="duty officer", url=duty.url, events=["alert.escalated"]
    )
    policy = EscalationPolicy.objects.create(site=device.location.site, after_minutes=10)
    EscalationPolicy.objects.filter(pk=policy.pk).update(
        created=timezone.now() - timedelta(hours=1)
    )
    now = timezone.now()
    overdue = open_alert(**alert_kwargs(device, started_at=now - timedelta(minutes=11)))
    recent = open_alert(**alert_kwargs(device, started_at=now - timedelta(minutes=5)))
    reviewed = open_alert(**alert_kwargs(device, started_at=now - timedelta(minutes=30)))
    review_alert(reviewed.pk, get_user_model().objects.create_user("olga"), "0_1")
    # Another site's alert, just as old, under no policy.
    elsewhere = Location.objects.create(site=Site.objects.create(name="Depot"), name="Gate")
    other = device.__class__.objects.create(location=elsewhere, name="gate-mic")
    open_alert(**alert_kwargs(other, started_at=now - timedelta(minutes=40)))

    assert escalate_unreviewed_alerts() == [overdue.pk]
    assert escalate_unreviewed_alerts() == []  # once
    (message,) = duty.messages()
    assert message["type"] == "alert.escalated"
    assert message["alert"]["event_id"] == f"alert-{overdue.pk}"
    assert message["alert"]["review"]["state"] == "new"
    assert [m["type"] for m in hub.messages()] == ["alert.opened"] * 3  # no escalation there
    assert Delivery.objects.get(destination=duty_officer).alert_id == overdue.pk
    assert recent.pk not in [m["alert"]["id"] for m in duty.messages()]


def test_alerts_older_than_the_policy_are_not_escalated(inline, device, receiver):
    duty = receiver()
    destination(device, "webhook", url=duty.url, events=["alert.escalated"])
    open_alert(**alert_kwargs(device, started_at=timezone.now() - timedelta(minutes=30)))
    EscalationPolicy.objects.create(site=device.location.site, after_minutes=10)
    assert escalate_unreviewed_alerts() == [] and duty.requests == []


def test_the_escalation_sweep_is_on_the_beat_schedule():
    from eyescream_site.celery import app

    app.loader.import_default_modules()
    entry = beat_schedule()["notifications-escalation-sweep"]
    assert entry["task"] in app.tasks and entry["schedule"] > 0
    assert "notifications-escalation-sweep" in app.conf.beat_schedule
