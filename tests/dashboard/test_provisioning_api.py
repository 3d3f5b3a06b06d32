"""The provisioning API: admins create and update sites, locations and devices, disable them and
rotate a device's token (in the answer once, never read back); operators only read."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from devices import services
from devices.models import Device, Location, Site
from devices.protocol import ProtocolError


@pytest.fixture(autouse=True)
def empty_trail(db):
    """Each test reads the trail its own actions leave: the events of the shipped model's
    registration at migrate (``registry``) are set aside, inside the test's transaction."""
    AuditEvent.objects.all().delete()


@pytest.fixture
def admin_api(users):
    api = APIClient()
    api.force_authenticate(users["admin"])
    return api


@pytest.fixture
def operator_api(users):
    api = APIClient()
    api.force_authenticate(users["operator"])
    return api


def provision(api) -> dict:
    site = api.post(
        "/api/sites/", {"name": "Harbour", "latitude": 53.54, "longitude": 9.98}, format="json"
    )
    assert site.status_code == 201, site.data
    location = api.post(
        "/api/locations/",
        {"site": site.data["id"], "name": "Pier 2", "latitude": 53.541, "longitude": 9.981},
        format="json",
    )
    assert location.status_code == 201, location.data
    device = api.post(
        "/api/devices/", {"name": "pier-mic", "location": location.data["id"]}, format="json"
    )
    assert device.status_code == 201, device.data
    return {"site": site.data, "location": location.data, "device": device.data}


def test_an_admin_provisions_a_site_a_location_and_a_device_with_its_token(admin_api):
    made = provision(admin_api)
    token = made["device"]["token"]
    assert token.startswith("esd_") and made["device"]["has_token"]
    device = services.authenticate(token)  # the token the answer showed is the device's
    assert device.pk == made["device"]["id"] and device.location.site.name == "Harbour"
    # Read back: never the token.
    for url in (f"/api/devices/{device.pk}/", "/api/devices/", "/api/sites/", "/api/locations/"):
        response = admin_api.get(url)
        assert response.status_code == 200
        assert token not in response.content.decode() and "token_hash" not in response.data
    # Updates.
    renamed = admin_api.patch(f"/api/sites/{made['site']['id']}/", {"address": "Kai 1"})
    assert renamed.status_code == 200 and Site.objects.get().address == "Kai 1"
    moved = admin_api.patch(f"/api/locations/{made['location']['id']}/", {"x": 0.25, "y": 0.5})
    assert moved.status_code == 200 and Location.objects.get().x == 0.25
    device_url = f"/api/devices/{device.pk}/"
    updated = admin_api.patch(device_url, {"name": "pier-mic-2"}, format="json")
    assert updated.status_code == 200 and updated.data["name"] == "pier-mic-2"
    assert "token" not in updated.data
    # Every change is in the audit trail, by the admin.

    trail = list(AuditEvent.objects.order_by("id").values_list("action", "object_type"))
    assert trail == [
        ("create", "devices.site"),
        ("create", "devices.location"),
        ("create", "devices.device"),
        ("change", "devices.site"),
        ("change", "devices.location"),
        ("change", "devices.device"),
    ], trail
    assert set(AuditEvent.objects.values_list("actor_name", flat=True)) == {"boss"}


def test_rotating_a_token_shows_the_new_one_once_and_the_old_one_stops(admin_api):
    made = provision(admin_api)
    old, device_id = made["device"]["token"], made["device"]["id"]
    rotated = admin_api.post(f"/api/devices/{device_id}/rotate_token/")
    assert rotated.status_code == 200
    new = rotated.data["token"]
    assert new != old and services.authenticate(new).pk == device_id
    with pytest.raises(ProtocolError) as refused:
        services.authenticate(old)
    assert refused.value.error == "bad_token"
    revoked = admin_api.post(f"/api/devices/{device_id}/revoke_token/")
    assert revoked.status_code == 200 and revoked.data["has_token"] is False
    with pytest.raises(ProtocolError):
        services.authenticate(new)


def test_disabling_a_site_or_a_location_disables_its_devices(admin_api):
    made = provision(admin_api)
    other = admin_api.post(
        "/api/devices/", {"name": "pier-mic-b", "location": made["location"]["id"]}, format="json"
    )
    site_id, location_id = made["site"]["id"], made["location"]["id"]
    response = admin_api.post(f"/api/sites/{site_id}/disable/")
    assert response.status_code == 200 and response.data == {"devices": 2}
    assert not Device.objects.filter(enabled=True).exists()
    with pytest.raises(ProtocolError) as refused:
        services.authenticate(other.data["token"])
    assert refused.value.error == "device_disabled"
    assert admin_api.post(f"/api/locations/{location_id}/enable/").data == {"devices": 2}
    assert Device.objects.filter(enabled=True).count() == 2
    assert admin_api.post(f"/api/devices/{other.data['id']}/disable/").data["enabled"] is False


def test_operators_read_but_cannot_provision(admin_api, operator_api, users):
    made = provision(admin_api)
    device_id, site_id = made["device"]["id"], made["site"]["id"]
    assert operator_api.get("/api/locations/").status_code == 200
    assert operator_api.get(f"/api/devices/{device_id}/").status_code == 200
    writes = [
        ("post", "/api/sites/", {"name": "Other"}),
        ("patch", f"/api/sites/{site_id}/", {"name": "Renamed"}),
        ("post", "/api/locations/", {"site": site_id, "name": "Gate"}),
        ("patch", f"/api/locations/{made['location']['id']}/", {"name": "Gate"}),
        ("post", "/api/devices/", {"name": "x", "location": made["location"]["id"]}),
        ("patch", f"/api/devices/{device_id}/", {"name": "y"}),
        ("post", f"/api/devices/{device_id}/rotate_token/", None),
        ("post", f"/api/devices/{device_id}/revoke_token/", None),
        ("post", f"/api/sites/{site_id}/disable/", None),
        ("post", f"/api/locations/{made['location']['id']}/disable/", None),
    ]
    anonymous = APIClient()
    plain = APIClient()
    plain.force_authenticate(users["plain"])
    for method, url, data in writes:
        for api, expected in ((operator_api, 403), (plain, 403), (anonymous, (401, 403))):
            status = getattr(api, method)(url, data, format="json").status_code
            assert status in (expected if isinstance(expected, tuple) else (expected,)), (
                url,
                status,
            )
    assert Site.objects.count() == 1 and Device.objects.get().name == "pier-mic"
    assert services.authenticate(made["device"]["token"]).pk == device_id
    assert admin_api.delete(f"/api/devices/{device_id}/").status_code == 405
    assert admin_api.delete(f"/api/sites/{site_id}/").status_code == 405


def test_the_openapi_schema_documents_the_provisioning_endpoints(admin_api):
    schema = admin_api.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/locations/", "/api/devices/{id}/rotate_token/", "/api/sites/{id}/disable/"):
        assert path in text, path


CSV = """site,location,name,latitude,longitude
Harbour,Pier 2,pier-mic-a,53.541,9.981
Harbour,Pier 2,pier-mic-b,,
Depot,Gate,gate-mic,48.1,11.5
"""


def test_bulk_import_from_csv_makes_devices_with_their_tokens_once(admin_api, operator_api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    assert operator_api.post("/api/devices/import/", {"csv": CSV}).status_code == 403
    upload = SimpleUploadedFile("devices.csv", CSV.encode(), content_type="text/csv")
    response = admin_api.post("/api/devices/import/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.data
    assert [d["name"] for d in response.data] == ["pier-mic-a", "pier-mic-b", "gate-mic"]
    for row in response.data:
        assert services.authenticate(row["token"]).pk == row["id"]
    assert sorted(Site.objects.values_list("name", flat=True)) == ["Depot", "Harbour"]
    pier = Location.objects.get(name="Pier 2")
    assert (pier.latitude, pier.longitude) == (53.541, 9.981) and pier.devices.count() == 2

    # The same file again, or a bad row: nothing stored, every reason with its line.
    again = admin_api.post("/api/devices/import/", {"csv": CSV}, format="json")
    assert again.status_code == 400 and len(again.data["errors"]) == 3, again.data
    bad = "site,location,name,latitude\nDepot,Gate,new-mic,95\nDepot,,x,\nDepot,Gate,ok-mic,\n"
    rejected = admin_api.post("/api/devices/import/", {"csv": bad}, format="json")
    assert rejected.status_code == 400
    assert rejected.data["errors"] == [
        "line 2: latitude 95 is out of range",
        "line 3: location is empty",
    ]
    header = admin_api.post("/api/devices/import/", {"csv": "site,name,colour\n"}, format="json")
    assert header.status_code == 400 and "missing location" in header.data["errors"][0]
    assert Device.objects.count() == 3
