"""CSRF on every state change: each non-GET row of the permission matrix, sent by a logged-in
admin's browser session without the CSRF token, is refused (403) and changes nothing; the same
request with the token from the page's cookie goes through."""

from __future__ import annotations

from urllib.parse import urlencode

from django.test import Client

from accounts.models import AuditEvent
from alerts.models import Review
from devices.models import Device, Site

from .test_permission_matrix import ROUTES, world  # noqa: F401 (the fixture)

STATE_CHANGES = [(m, u) for rows in ROUTES.values() for m, u, _ in rows if m != "GET"]
EXTRA = [
    ("POST", "/manage/sites/new/", {"name": "Forged"}),
    ("POST", "/accounts/logout/", {}),
    (
        "POST",
        "/admin/devices/device/",
        {"action": "disable_devices", "_selected_action": "{device}"},
    ),
]


def snapshot():
    return (
        list(Device.objects.values_list("enabled", "token_hash")),
        Site.objects.count(),
        Review.objects.count(),
        AuditEvent.objects.count(),
    )


def test_every_state_change_needs_the_csrf_token(world):  # noqa: F811
    assert len(STATE_CHANGES) >= 5
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["users"]["admin"])
    before = snapshot()
    checks = [(m, u, {"label": "1", "action": "disable"}) for m, u in STATE_CHANGES] + EXTRA
    for method, url, data in checks:
        url = url.format(**world["ids"])
        data = {k: v.format(**world["ids"]) for k, v in data.items()}
        response = client.generic(method, url, data=_form(data), content_type=FORM)
        assert response.status_code == 403, (method, url, response.status_code)
        assert b"CSRF" in response.content, (method, url)
    assert snapshot() == before
    # With the token (as the pages send it: the cookie's value in X-CSRFToken) it goes through.
    client.get("/alerts/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/api/devices/{world['ids']['device']}/disable/", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200
    response = client.post("/manage/sites/new/", {"name": "Real", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and Site.objects.filter(name="Real").exists()


FORM = "application/x-www-form-urlencoded"


def _form(data: dict) -> str:
    return urlencode(data)
