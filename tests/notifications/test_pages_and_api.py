"""Destinations on the admin pages and in the API; deliveries on the alert page and in the API;
bad input (an invalid URL, an unreachable host) reported where the admin looks."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from alerts.models import Alert
from alerts.services import open_alert
from notifications.models import Destination
from tests.alerts.conftest import alert_kwargs

from .conftest import destination, free_port

pytestmark = pytest.mark.django_db(transaction=True)

INLINE_FORMS = {
    "deliveries-TOTAL_FORMS": "0",
    "deliveries-INITIAL_FORMS": "0",
    "deliveries-MIN_NUM_FORMS": "0",
    "deliveries-MAX_NUM_FORMS": "0",
}


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("ada", password="pw"))
    return client


@pytest.fixture
def operator_client(client):
    user = get_user_model().objects.create_user("otto")
    user.groups.add(Group.objects.get_or_create(name="Operators")[0])
    client.force_login(user)
    return client


def form(device, **fields) -> dict:
    data = {
        "site": device.location.site_id,
        "name": "control room",
        "kind": "webhook",
        "enabled": "on",
        "events": ["alert.opened", "alert.ended"],
        "url": "https://hooks.example/eyescream",
        "secret": "s3cret",
        "topic_prefix": "eyescream",
        **INLINE_FORMS,
    }
    data.update(fields)
    return data


def test_the_admin_page_refuses_an_invalid_url_with_the_reason(admin_client, device):
    add = "/admin/notifications/destination/add/"
    response = admin_client.post(add, form(device, url="hooks.example/no-scheme"))
    assert response.status_code == 200
    assert "a webhook needs an http:// or https:// URL" in response.content.decode()
    response = admin_client.post(add, form(device, kind="mqtt", url="http://broker:1883"))
    assert "a broker URL is mqtt://host[:port]" in response.content.decode()
    assert not Destination.objects.exists()

    response = admin_client.post(add, form(device))
    assert response.status_code == 302
    saved = Destination.objects.get()
    assert saved.events == ["alert.opened", "alert.ended"] and saved.secret == "s3cret"


def test_an_unreachable_host_is_shown_on_the_destination_page_and_the_alert_page(
    inline, admin_client, device
):
    hook = destination(device, "webhook", name="gone", url=f"http://127.0.0.1:{free_port()}/x")
    alert = open_alert(**alert_kwargs(device))
    assert Alert.objects.filter(pk=alert.pk, status="new").exists()  # stored as ever

    page = admin_client.get(f"/admin/notifications/destination/{hook.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Connection refused" in text and "gave_up" in text
    assert text.count("alert.opened") >= 3  # one row per attempt in the deliveries inline

    detail = admin_client.get(f"/alerts/{alert.pk}/").content.decode()
    assert 'id="deliveries"' in detail and "gone (webhook)" in detail
    assert "Connection refused" in detail


def test_the_api_manages_destinations_for_admins_and_hides_secrets(admin_client, device):
    bad = admin_client.post(
        "/api/destinations/",
        {**form(device, url="ftp://x"), "events": ["alert.opened"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "url" in bad.json()
    unknown = admin_client.post(
        "/api/destinations/", {**form(device), "events": ["alert.exploded"]}, "application/json"
    )
    assert unknown.status_code == 400 and "events" in unknown.json()
    made = admin_client.post("/api/destinations/", form(device), content_type="application/json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert "secret" not in body and body["has_secret"] is True
    assert body["events"] == ["alert.opened", "alert.ended"]
    changed = admin_client.patch(
        f"/api/destinations/{body['id']}/", {"enabled": False}, content_type="application/json"
    )
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    listed = admin_client.get(f"/api/destinations/?site={device.location.site_id}").json()
    assert [d["name"] for d in listed] == ["control room"]


def test_operators_read_deliveries_but_not_destinations(inline, operator_client, device, receiver):
    hub = receiver(statuses=[500])
    destination(device, "webhook", url=hub.url)
    alert = open_alert(**alert_kwargs(device))

    assert operator_client.get("/api/destinations/").status_code == 403
    rows = operator_client.get(f"/api/alerts/{alert.pk}/deliveries/").json()
    assert [(r["attempt"], r["status"], r["response_code"]) for r in rows] == [
        (2, "delivered", 200),
        (1, "failed", 500),
    ]
    assert rows[0]["message_id"] == rows[1]["message_id"]
    delivered = operator_client.get(f"/api/deliveries/?alert={alert.pk}&status=delivered").json()
    assert len(delivered) == 1 and delivered[0]["destination_name"] == "webhook"
    assert operator_client.get("/api/alerts/999999/deliveries/").status_code == 404
