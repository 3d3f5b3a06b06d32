"""Every page, API endpoint and WebSocket route checks the role.

Anonymous: pages redirect to the login page, the API answers 401, the WebSocket is refused.
Logged in without a role: 403 everywhere. Operators: the operator pages and reading/reviewing;
403 on admin pages and admin API actions. Admins and superusers: everything.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile

from accounts.api_auth import make_token
from alerts.consumers import FORBIDDEN, UNAUTHENTICATED, DashboardConsumer

from .conftest import PASSWORD

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def world(users, device, alert, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    site = device.location.site
    site.floor_plan.save("plan.png", ContentFile(PNG_1PX), save=False)
    site.floor_plan_bounds = [[52.519, 13.399], [52.521, 13.401]]
    site.save()
    return {"users": users, "device": device, "alert": alert, "site": site}


def operator_pages(w) -> list[str]:
    return [
        "/",
        "/alerts/",
        "/alerts/?status=all",
        f"/alerts/{w['alert'].pk}/",
        "/api/docs/",
        f"/sites/{w['site'].pk}/floor-plan/",
    ]


def admin_pages(w) -> list[str]:
    location = w["device"].location
    return [
        "/manage/",
        "/manage/sites/new/",
        f"/manage/sites/{w['site'].pk}/",
        "/manage/locations/new/",
        f"/manage/locations/{location.pk}/",
        "/manage/devices/new/",
        f"/manage/devices/{w['device'].pk}/",
        f"/manage/devices/{w['device'].pk}/token/",
    ]


def api_reads(w) -> list[str]:
    return [
        "/api/alerts/",
        f"/api/alerts/{w['alert'].pk}/",
        "/api/sites/",
        f"/api/sites/{w['site'].pk}/",
        "/api/devices/",
        f"/api/devices/{w['device'].pk}/",
        "/api/schema/",
    ]


def test_anonymous_gets_the_login_page_or_401(client, world):
    for url in operator_pages(world) + admin_pages(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    assert client.get("/accounts/login/").status_code == 200
    for url in api_reads(world):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"
    for url in admin_api_actions(world) + [f"/api/alerts/{world['alert'].pk}/review/"]:
        assert client.post(url, {"label": "1"}).status_code == 401, url
    assert (
        client.post(f"/manage/devices/{world['device'].pk}/", {"action": "disable"}).status_code
        == 302
    )
    world["device"].refresh_from_db()
    assert world["device"].enabled


def admin_api_actions(w) -> list[str]:
    return [f"/api/devices/{w['device'].pk}/disable/", f"/api/devices/{w['device'].pk}/enable/"]


def test_a_user_without_a_role_gets_403_everywhere(client, world):
    client.force_login(world["users"]["plain"])
    for url in operator_pages(world) + admin_pages(world) + api_reads(world):
        assert client.get(url).status_code == 403, url
    response = client.post(f"/api/alerts/{world['alert'].pk}/review/", {"label": "1"})
    assert response.status_code == 403


def test_operator_sees_operator_pages_and_gets_403_on_admin_pages(client, world):
    client.force_login(world["users"]["operator"])
    for url in operator_pages(world) + api_reads(world):
        assert client.get(url).status_code == 200, url
    for url in admin_pages(world):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"403 Forbidden" in response.content
    for action in ("rotate", "revoke", "disable"):
        url = f"/manage/devices/{world['device'].pk}/"
        assert client.post(url, {"action": action}).status_code == 403
    for url in admin_api_actions(world):
        assert client.post(url).status_code == 403, url
    world["device"].refresh_from_db()
    assert world["device"].enabled and world["device"].token_hash is None


@pytest.mark.parametrize("role", ["admin", "superuser"])
def test_admins_reach_everything(client, world, role):
    client.force_login(world["users"][role])
    for url in operator_pages(world) + admin_pages(world) + api_reads(world):
        assert client.get(url).status_code == 200, url
    assert client.post(admin_api_actions(world)[0]).status_code == 200


def test_login_form_logs_an_operator_in_and_lands_on_the_map(client, world):
    response = client.post(
        "/accounts/login/", {"username": "op1", "password": PASSWORD, "next": "/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and b'id="map"' in page.content


def test_api_token_authenticates_and_stops_working_after_a_password_change(client, world):
    operator = world["users"]["operator"]
    token = make_token(operator)
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    assert client.get("/api/alerts/", **auth).status_code == 200
    assert client.get("/api/alerts/", HTTP_AUTHORIZATION="Token nonsense").status_code == 401
    plain = {"HTTP_AUTHORIZATION": f"Token {make_token(world['users']['plain'])}"}
    assert client.get("/api/alerts/", **plain).status_code == 403
    operator.set_password("another-password-1")
    operator.save()
    response = client.get("/api/alerts/", **auth)
    assert response.status_code == 401 and b"revoked" in response.content


async def ws_connect(user):
    communicator = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/alerts/")
    if user is not None:
        communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
def test_websocket_refuses_anonymous_and_users_without_a_role(users):
    async_to_sync(check_websocket_roles)(users)


async def check_websocket_roles(users) -> None:
    for user, expected in [
        (None, UNAUTHENTICATED),
        (AnonymousUser(), UNAUTHENTICATED),
        (users["plain"], FORBIDDEN),
    ]:
        communicator, connected, code = await ws_connect(user)
        assert not connected and code == expected
    for role in ("operator", "admin", "superuser"):
        communicator, connected, _ = await ws_connect(users[role])
        assert connected, role
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=2) == {"type": "pong"}
        await communicator.disconnect()


@pytest.mark.django_db
def test_the_data_migration_creates_both_roles():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"Admins", "Operators"}


def test_an_admin_who_is_not_staff_uses_admin_to_manage_devices_and_tokens(client, world):
    """The README and docs/protocol.md send the Admins role to /admin/ to rotate tokens."""
    admin_user, device = world["users"]["admin"], world["device"]
    assert not admin_user.is_staff and not admin_user.is_superuser
    client.force_login(admin_user)
    for page in (
        "/admin/",
        "/admin/devices/device/",
        f"/admin/devices/device/{device.pk}/change/",
        "/admin/devices/site/add/",
        "/admin/alerts/alert/",
    ):
        assert client.get(page).status_code == 200, page
    response = client.post(
        "/admin/devices/device/",
        {"action": "rotate_tokens", "_selected_action": [str(device.pk)]},
    )
    assert response.status_code == 200
    assert "esd_" in response.content.decode()  # the new token, shown once
    device.refresh_from_db()
    assert device.token_hash


@pytest.mark.parametrize("role", ["plain", "operator"])
def test_other_roles_are_kept_out_of_admin(client, world, role):
    client.force_login(world["users"][role])
    response = client.get("/admin/devices/device/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
