"""Admin device pages: register (token shown once and valid), rotate, revoke, disable, place."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from devices import services
from devices.models import Device, Location
from devices.protocol import ProtocolError
from devices.tokens import hash_token


def shown_token(response, client=None) -> str:
    """The token on the page a POST redirected to (fetched with ``client``)."""
    if client is not None:
        assert response.status_code == 302, response.status_code
        response = client.get(response["Location"])
    match = re.search(rb'id="token" class="token">(esd_[^<]+)<', response.content)
    assert match, response.content[:2000]
    return match.group(1).decode()


@pytest.mark.django_db
def test_register_shows_a_working_token_once_and_stores_only_its_hash(client, users, device):
    client.force_login(users["admin"])
    response = client.post(
        "/manage/devices/new/", {"location": device.location.pk, "name": "mic-new", "enabled": "on"}
    )
    created = Device.objects.get(name="mic-new")
    assert response["Location"] == f"/manage/devices/{created.pk}/token/"  # POST-redirect-GET
    token = shown_token(response, client)
    # The page shown again (a reload): no token, nothing registered or rotated again.
    again = client.get(response["Location"])
    assert again.status_code == 200 and b'id="token-gone"' in again.content
    assert token.encode() not in again.content
    assert "no-store" in again["Cache-Control"]
    assert Device.objects.filter(name="mic-new").count() == 1
    assert created.token_hash == hash_token(token, settings.DEVICE_TOKEN_KEY)
    assert services.authenticate(token) == created
    page = client.get(f"/manage/devices/{created.pk}/")
    assert token.encode() not in page.content


@pytest.mark.django_db
def test_rotate_revoke_disable_and_enable(client, users, device):
    client.force_login(users["admin"])
    url = f"/manage/devices/{device.pk}/"
    first = shown_token(client.post(url, {"action": "rotate"}), client)
    second = shown_token(client.post(url, {"action": "rotate"}), client)
    device.refresh_from_db()
    rotated = device.token_hash
    reloaded = client.get(f"{url}token/")
    assert b'id="token-gone"' in reloaded.content
    device.refresh_from_db()
    assert device.token_hash == rotated  # the reload rotated nothing
    assert first != second
    with pytest.raises(ProtocolError, match="unknown or revoked"):
        services.authenticate(first)
    assert services.authenticate(second).pk == device.pk
    assert client.post(url, {"action": "revoke"}).status_code == 302
    with pytest.raises(ProtocolError):
        services.authenticate(second)
    client.post(url, {"action": "disable"})
    device.refresh_from_db()
    assert not device.enabled
    client.post(url, {"action": "enable"})
    device.refresh_from_db()
    assert device.enabled
    page = client.get(url)
    assert b"rejected" in page.content and b"Last seen" in page.content


@pytest.mark.django_db
def test_location_form_saves_the_clicked_coordinates_and_rejects_bad_plan_spots(
    client, users, device
):
    client.force_login(users["admin"])
    site = device.location.site
    response = client.post(
        "/manage/locations/new/",
        {"site": site.pk, "name": "Restroom", "latitude": "52.5203", "longitude": "13.4005"},
    )
    assert response.status_code == 302
    placed = Location.objects.get(name="Restroom")
    assert (placed.latitude, placed.longitude) == (52.5203, 13.4005)
    response = client.post(
        "/manage/locations/new/", {"site": site.pk, "name": "Bad", "x": "1.5", "y": "0.2"}
    )
    assert response.status_code == 200 and b"a fraction of the floor plan" in response.content
    response = client.post(
        "/manage/sites/new/",
        {"name": "Station B", "floor_plan_bounds": "[[1, 2], [0, 3]]"},
    )
    assert response.status_code == 200 and b"north &gt; south" in response.content
