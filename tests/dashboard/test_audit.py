"""The audit trail: every create/rotate/revoke/disable/delete of a device, site or user and every
verdict becomes one ``AuditEvent``, readable by admins only (``/admin/`` and ``/api/audit/``)."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from alerts.models import Alert
from devices.models import Device, Site


@pytest.fixture(autouse=True)
def empty_trail(db):
    """Each test reads the trail its own actions leave: the events of the shipped model's
    registration at migrate (``registry``) are set aside, inside the test's transaction."""
    AuditEvent.objects.all().delete()


def events(**filters) -> list[tuple[str, str, str, str]]:
    rows = AuditEvent.objects.filter(**filters).order_by("pk")
    return [(e.actor_name, e.action, e.object_type, e.object_id) for e in rows]


def test_device_lifecycle_on_the_manage_pages_is_audited(client, users, device):
    client.force_login(users["admin"])
    location = device.location
    response = client.post(
        "/manage/devices/new/", {"location": location.pk, "name": "mic-9", "enabled": "on"}
    )
    new = Device.objects.get(name="mic-9")
    assert response.status_code == 302  # to the page that shows the token once
    assert b"esd_" in client.get(response["Location"]).content
    url = f"/manage/devices/{new.pk}/"
    for action in ("rotate", "revoke", "disable", "enable"):
        assert client.post(url, {"action": action}).status_code in (200, 302)
    assert events(object_type="devices.device") == [
        ("boss", name, "devices.device", str(new.pk))
        for name in ("create", "rotate_token", "revoke_token", "disable", "enable")
    ]
    created = AuditEvent.objects.filter(action="create").get()
    assert created.actor_user == users["admin"] and created.actor_kind == "user"
    assert created.source_ip == "127.0.0.1" and created.object_name == "mic-9"
    assert "esd_" not in str(AuditEvent.objects.values_list("details", flat=True))


def test_site_pages_and_the_device_api_are_audited(client, users, device):
    client.force_login(users["admin"])
    assert client.post("/manage/sites/new/", {"name": "Depot <b>"}).status_code == 302
    site = Site.objects.get(name="Depot <b>")
    data = {"name": "Depot 2", "address": "Dock 4"}
    assert client.post(f"/manage/sites/{site.pk}/", data).status_code == 302
    assert client.post(f"/api/devices/{device.pk}/disable/").status_code == 200
    assert events() == [
        ("boss", "create", "devices.site", str(site.pk)),
        ("boss", "change", "devices.site", str(site.pk)),
        ("boss", "disable", "devices.device", str(device.pk)),
    ]
    change = AuditEvent.objects.get(action="change")
    assert set(change.details["fields"]) == {"name", "address"}


def test_admin_site_changes_are_audited(client, users, device, django_user_model):
    client.force_login(users["superuser"])
    # A device disabled and then deleted in /admin/, its token rotated by an admin action.
    response = client.post(
        "/admin/devices/device/",
        {"action": "rotate_tokens", "_selected_action": [device.pk]},
    )
    assert response.status_code == 200 and b"esd_" in response.content
    response = client.post(f"/admin/devices/device/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Device.objects.filter(pk=device.pk).exists()
    # A user created and deleted.
    response = client.post(
        "/admin/auth/user/add/",
        {"username": "newop", "password1": "Xy7-long-pass", "password2": "Xy7-long-pass"},
    )
    assert response.status_code == 302, response.content[:500]
    newop = django_user_model.objects.get(username="newop")
    response = client.post(f"/admin/auth/user/{newop.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert events() == [
        ("root", "rotate_token", "devices.device", str(device.pk)),
        ("root", "delete", "devices.device", str(device.pk)),
        ("root", "create", "auth.user", str(newop.pk)),
        ("root", "delete", "auth.user", str(newop.pk)),
    ]
    assert AuditEvent.objects.get(action="delete", object_type="auth.user").object_name == "newop"


def test_a_verdict_and_a_changed_verdict_are_audited(client, users, alert):
    client.force_login(users["operator"])
    response = client.post(f"/api/alerts/{alert.pk}/review/", {"label": "0_1", "note": "siren"})
    assert response.status_code == 200
    review = AuditEvent.objects.get(action="review")
    assert (review.actor_name, review.object_type, review.object_id) == (
        "op1",
        "alerts.alert",
        str(alert.pk),
    )
    assert review.details == {"label": "0_1", "status": "dismissed", "note": "siren"}
    client.force_login(users["superuser"])
    page = client.get(f"/admin/alerts/alert/{alert.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(status=Alert.CONFIRMED)
    inline = page.context["inline_admin_formsets"][0].formset
    prefix = inline.prefix
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-INITIAL_FORMS": "1",
            f"{prefix}-0-id": str(alert.reviews.get().pk),
            f"{prefix}-0-alert": str(alert.pk),
            f"{prefix}-0-label": "1",
            f"{prefix}-0-user": str(users["operator"].pk),
            f"{prefix}-0-note": "siren",
        }
    )
    response = client.post(f"/admin/alerts/alert/{alert.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    alert.refresh_from_db()
    assert alert.status == Alert.CONFIRMED
    changed = AuditEvent.objects.get(action="change_verdict")
    assert changed.actor_name == "root" and changed.object_id == str(alert.pk)
    assert "Status" in str(changed.details) and "review" in str(changed.details)


@pytest.fixture
def trail(users, device):
    from accounts.audit import Actor, record

    for i in range(3):
        record(Actor.of_user(users["admin"], "10.0.0.7"), "disable", device, details={"i": i})
    record(Actor.device(device.pk, device.name, "192.0.2.1"), "connect", device)
    return AuditEvent.objects.order_by("pk")


def test_the_audit_api_is_read_only_and_for_admins(client, users, trail):
    assert client.get("/api/audit/").status_code == 401
    client.force_login(users["operator"])
    assert client.get("/api/audit/").status_code == 403
    assert client.get(f"/api/audit/{trail[0].pk}/").status_code == 403
    client.force_login(users["admin"])
    rows = client.get("/api/audit/").json()
    assert [r["action"] for r in rows] == ["connect", "disable", "disable", "disable"]
    assert rows[0]["actor_kind"] == "device" and rows[0]["source_ip"] == "192.0.2.1"
    assert rows[1]["actor_name"] == "boss" and rows[1]["details"] == {"i": 2}
    since = client.get(f"/api/audit/?since_id={trail[0].pk}&action=disable").json()
    assert [r["details"]["i"] for r in since] == [1, 2]
    assert len(client.get("/api/audit/?limit=2").json()) == 2
    assert client.get("/api/audit/?limit=x").status_code == 400
    one = trail[0].pk
    assert client.get(f"/api/audit/{one}/").json()["id"] == one
    assert client.post("/api/audit/", {"action": "x"}).status_code == 405
    assert client.delete(f"/api/audit/{one}/").status_code == 405
    assert client.put(f"/api/audit/{one}/", {}).status_code == 405
    assert AuditEvent.objects.count() == 4


def test_the_audit_admin_page_is_read_only_and_for_admins(client, users, trail):
    one = trail[0].pk
    client.force_login(users["operator"])
    assert client.get("/admin/accounts/auditevent/").status_code == 302  # to the admin login
    client.force_login(users["admin"])
    listing = client.get("/admin/accounts/auditevent/")
    assert listing.status_code == 200 and b"boss" in listing.content
    page = client.get(f"/admin/accounts/auditevent/{one}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(f"/admin/accounts/auditevent/{one}/change/", {}).status_code == 403
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert (
        client.post(f"/admin/accounts/auditevent/{one}/delete/", {"post": "yes"}).status_code == 403
    )
    assert AuditEvent.objects.count() == 4
