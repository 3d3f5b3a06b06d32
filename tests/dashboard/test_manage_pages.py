"""Device admin in ``/manage/``: edit and move a device, delete sites, locations and devices
after a confirmation page (POST-redirect-GET), floor-plan bounds from the map picker; every
change in the audit trail."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from alerts.models import Alert
from devices.models import Device, Location, Site

from .conftest import make_alert


@pytest.fixture
def admin_client(client, users):
    client.force_login(users["admin"])
    return client


@pytest.mark.django_db
def test_a_device_is_renamed_and_moved_audited(admin_client, device):
    other = Location.objects.create(site=device.location.site, name="Platform 4")
    response = admin_client.post(
        f"/manage/devices/{device.pk}/edit/", {"location": other.pk, "name": "mic-4a"}
    )
    assert response.status_code == 302 and response["Location"] == f"/manage/devices/{device.pk}/"
    device.refresh_from_db()
    assert (device.name, device.location) == ("mic-4a", other)
    event = AuditEvent.objects.get(action="change", object_type="devices.device")
    assert sorted(event.details["fields"]) == ["location", "name"]
    bad = admin_client.post(f"/manage/devices/{device.pk}/edit/", {"location": 9999, "name": ""})
    assert bad.status_code == 200 and "This field is required." in bad.content.decode()


@pytest.mark.django_db
def test_a_device_is_deleted_only_from_its_confirmation_page_and_its_alerts_stay(
    admin_client, device
):
    alert = make_alert(device)
    url = f"/manage/devices/{device.pk}/delete/"
    page = admin_client.get(url).content.decode()
    assert "Delete device mic-3a?" in page and "1 devices" in page and "Alerts are kept" in page
    unconfirmed = admin_client.post(url, {})
    assert unconfirmed.status_code == 302 and unconfirmed["Location"] == url
    assert Device.objects.filter(pk=device.pk).exists()
    done = admin_client.post(url, {"confirm": "delete"})
    assert done.status_code == 302 and done["Location"] == "/manage/"
    assert not Device.objects.filter(pk=device.pk).exists()
    alert = Alert.objects.get(pk=alert.pk)
    assert alert.device_id is None and alert.device_name == "mic-3a"
    event = AuditEvent.objects.get(action="delete")
    assert (event.object_type, event.object_id, event.object_name) == (
        "devices.device",
        str(device.pk),
        "mic-3a",
    )
    assert "Deleted device mic-3a." in admin_client.get("/manage/").content.decode()
    assert admin_client.get(url).status_code == 404  # a reload finds nothing to delete


@pytest.mark.django_db
def test_a_location_or_site_with_devices_is_not_deleted_and_says_why(admin_client, device):
    location, site = device.location, device.location.site
    for url in (f"/manage/locations/{location.pk}/delete/", f"/manage/sites/{site.pk}/delete/"):
        page = admin_client.get(url).content.decode()
        assert (
            "cannot be deleted" in page and "device mic-3a" in page and 'id="confirm"' not in page
        )
        refused = admin_client.post(url, {"confirm": "delete"})
        assert refused["Location"] == url
        assert "must go first" in admin_client.get(url).content.decode()
    assert Location.objects.filter(pk=location.pk).exists()
    assert not AuditEvent.objects.filter(action="delete").exists()


@pytest.mark.django_db
def test_deleting_a_site_takes_its_empty_locations_audited(admin_client):
    site = Site.objects.create(name="Old depot")
    Location.objects.create(site=site, name="Gate")
    Location.objects.create(site=site, name="Yard")
    url = f"/manage/sites/{site.pk}/delete/"
    assert "2 locations" in admin_client.get(url).content.decode()
    assert admin_client.post(url, {"confirm": "delete"}).status_code == 302
    assert not Site.objects.exists() and not Location.objects.exists()
    event = AuditEvent.objects.get(action="delete")
    assert event.details["removed"] == {"sites": 1, "locations": 2}


@pytest.mark.django_db
def test_floor_plan_bounds_come_from_the_picker_and_bad_ones_are_refused(admin_client, device):
    site = device.location.site
    fields = {"name": site.name, "time_zone": "UTC"}
    good = admin_client.post(
        f"/manage/sites/{site.pk}/", {**fields, "floor_plan_bounds": "[[52.5, 13.3], [52.6, 13.5]]"}
    )
    assert good.status_code == 302
    site.refresh_from_db()
    assert site.floor_plan_bounds == [[52.5, 13.3], [52.6, 13.5]]
    bad = admin_client.post(
        f"/manage/sites/{site.pk}/", {**fields, "floor_plan_bounds": "[[52.6, 13.3], [52.5, 13.5]]"}
    )
    assert bad.status_code == 200 and "north &gt; south" in bad.content.decode()
    page = admin_client.get(f"/manage/sites/{site.pk}/").content.decode()
    assert 'type="hidden" name="floor_plan_bounds"' in page and 'id="bounds-fit"' in page
