"""Every route × every role, with the expected answer, in one table.

The routes come from the URL conf (``eyescream_site.urls``, flattened) and from the ASGI
application's WebSocket router (``eyescream_site.asgi``); a route that has no row in ``ROUTES``
(or an ``/admin/`` model without a row in ``ADMIN_MODELS``, or a WebSocket route without a row
in ``WEBSOCKETS``) fails the suite, so a new route cannot arrive without a decided rule.

Roles: ``anonymous``; ``operator`` (group Operators); ``admin`` (group Admins); ``device``: a
request carrying a valid device token (``Authorization: Token esd_...`` over HTTP, the hello's
``token`` on the device WebSocket) and no session.

Answers: an HTTP status, ``LOGIN`` (302 to the operators' login page), ``ADMIN_LOGIN`` (302 to
``/admin/login/``); on WebSockets ``"ready"`` (the device protocol's ready), ``"open"`` (the
handshake accepted) or ``"refused"`` (the handshake denied) or a close code.
"""

from __future__ import annotations

import asyncio
import importlib
import json

import pytest
import websockets
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.audit import Actor, record
from accounts.permissions import OPERATORS
from alerts.models import Review
from devices import services
from devices.protocol import CODES
from notifications.models import Delivery, Destination, EscalationPolicy
from registry.models import ModelVersion
from tests.devices.live import LiveServer
from tests.devices.wsutil import hello

from .conftest import PASSWORD
from .test_permissions import PNG_1PX

LOGIN, ADMIN_LOGIN = "login", "admin-login"
ROLES = ("anonymous", "operator", "admin", "device")


def same(answer) -> dict:
    return dict.fromkeys(ROLES, answer)


def roles(anonymous, operator, admin, device) -> dict:
    return dict(zip(ROLES, (anonymous, operator, admin, device), strict=True))


OPERATOR_PAGE = roles(LOGIN, 200, 200, LOGIN)
ADMIN_PAGE = roles(LOGIN, 403, 200, LOGIN)
OPERATOR_API = roles(401, 200, 200, 401)
ADMIN_API = roles(401, 403, 200, 401)
ADMIN_SITE = roles(ADMIN_LOGIN, ADMIN_LOGIN, 200, ADMIN_LOGIN)
PUBLIC = same(200)

# route pattern -> [(method, URL, {role: answer}), ...]; {site}, {device}, ... are fixture ids.
ROUTES: dict[str, list[tuple[str, str, dict]]] = {
    # Operator pages and media
    "": [("GET", "/", OPERATOR_PAGE)],
    "alerts/": [("GET", "/alerts/", OPERATOR_PAGE)],
    "alerts/<int:alert_id>/": [("GET", "/alerts/{alert}/", OPERATOR_PAGE)],
    "alerts/export.csv": [("GET", "/alerts/export.csv?status=all", OPERATOR_PAGE)],
    # Bulk acknowledge: back to the queue (302) for both roles; a GET is not allowed.
    "alerts/acknowledge/": [
        ("POST", "/alerts/acknowledge/", roles(LOGIN, 302, 302, LOGIN)),
        ("GET", "/alerts/acknowledge/", same(405)),
    ],
    "sites/<int:site_id>/floor-plan/": [("GET", "/sites/{site}/floor-plan/", OPERATOR_PAGE)],
    "^media/(?P<folder>snippets|spectrograms)/(?P<path>.+)$": [
        ("GET", "/media/snippets/{snippet}", OPERATOR_PAGE),
        # A path out of its folder is refused (safe_join: not found), never served.
        ("GET", "/media/spectrograms/../snippets/{snippet}", roles(LOGIN, 404, 404, LOGIN)),
    ],
    "device/": [("GET", "/device/", PUBLIC)],  # the browser microphone: the token is typed in
    # Admin pages
    "manage/": [("GET", "/manage/", ADMIN_PAGE)],
    "manage/sites/new/": [("GET", "/manage/sites/new/", ADMIN_PAGE)],
    "manage/sites/<int:site_id>/": [("GET", "/manage/sites/{site}/", ADMIN_PAGE)],
    "manage/locations/new/": [("GET", "/manage/locations/new/", ADMIN_PAGE)],
    "manage/locations/<int:location_id>/": [("GET", "/manage/locations/{location}/", ADMIN_PAGE)],
    "manage/devices/new/": [("GET", "/manage/devices/new/", ADMIN_PAGE)],
    "manage/devices/<int:device_id>/": [
        ("GET", "/manage/devices/{device}/", ADMIN_PAGE),
        ("POST", "/manage/devices/{device}/", roles(LOGIN, 403, 302, LOGIN)),
    ],
    # The token just issued, shown once from the session (here: none to show)
    "manage/devices/<int:device_id>/token/": [
        ("GET", "/manage/devices/{device}/token/", ADMIN_PAGE)
    ],
    # Edit or move a device: a POST without its fields is the form again with errors (200).
    "manage/devices/<int:device_id>/edit/": [
        ("GET", "/manage/devices/{device}/edit/", ADMIN_PAGE),
        ("POST", "/manage/devices/{device}/edit/", roles(LOGIN, 403, 200, LOGIN)),
    ],
    # Delete: GET is the confirmation page; a POST not from it (no confirm=delete) deletes
    # nothing and goes back to it (302).
    "manage/sites/<int:object_id>/delete/": [
        ("GET", "/manage/sites/{site}/delete/", ADMIN_PAGE),
        ("POST", "/manage/sites/{site}/delete/", roles(LOGIN, 403, 302, LOGIN)),
    ],
    "manage/locations/<int:object_id>/delete/": [
        ("GET", "/manage/locations/{location}/delete/", ADMIN_PAGE),
        ("POST", "/manage/locations/{location}/delete/", roles(LOGIN, 403, 302, LOGIN)),
    ],
    "manage/devices/<int:object_id>/delete/": [
        ("GET", "/manage/devices/{device}/delete/", ADMIN_PAGE),
        ("POST", "/manage/devices/{device}/delete/", roles(LOGIN, 403, 302, LOGIN)),
    ],
    # API
    "api/schema/": [("GET", "/api/schema/", OPERATOR_API)],
    "api/docs/": [("GET", "/api/docs/", OPERATOR_PAGE)],
    "api/^alerts/$": [("GET", "/api/alerts/", OPERATOR_API)],
    "api/^alerts/(?P<pk>[^/.]+)/$": [
        ("GET", "/api/alerts/{alert}/", OPERATOR_API),
        ("DELETE", "/api/alerts/{alert}/", roles(401, 405, 405, 401)),
    ],
    "api/^alerts/(?P<pk>[^/.]+)/review/$": [
        ("POST", "/api/alerts/{alert}/review/", roles(401, 200, 409, 401)),
    ],
    # Bulk acknowledge: the matrix's body names no alerts (400) for both roles.
    "api/^alerts/acknowledge/$": [
        ("POST", "/api/alerts/acknowledge/", roles(401, 400, 400, 401)),
        ("GET", "/api/alerts/acknowledge/", roles(401, 405, 405, 401)),
    ],
    "api/^sites/$": [("GET", "/api/sites/", OPERATOR_API)],
    "api/^sites/(?P<pk>[^/.]+)/$": [("GET", "/api/sites/{site}/", OPERATOR_API)],
    "api/^devices/$": [("GET", "/api/devices/", OPERATOR_API)],
    "api/^devices/(?P<pk>[^/.]+)/$": [("GET", "/api/devices/{device}/", OPERATOR_API)],
    "api/^devices/(?P<pk>[^/.]+)/disable/$": [
        ("POST", "/api/devices/{device}/disable/", ADMIN_API)
    ],
    "api/^devices/(?P<pk>[^/.]+)/enable/$": [("POST", "/api/devices/{device}/enable/", ADMIN_API)],
    # Provisioning (docs/operations.md#provisioning-api): an empty body is refused (400).
    "api/^devices/(?P<pk>[^/.]+)/rotate_token/$": [
        ("POST", "/api/devices/{device}/rotate_token/", ADMIN_API)
    ],
    "api/^devices/(?P<pk>[^/.]+)/revoke_token/$": [
        ("POST", "/api/devices/{device}/revoke_token/", ADMIN_API)
    ],
    "api/^devices/import/$": [("POST", "/api/devices/import/", roles(401, 403, 400, 401))],
    "api/^sites/(?P<pk>[^/.]+)/disable/$": [("POST", "/api/sites/{site}/disable/", ADMIN_API)],
    "api/^sites/(?P<pk>[^/.]+)/enable/$": [("POST", "/api/sites/{site}/enable/", ADMIN_API)],
    "api/^locations/$": [
        ("GET", "/api/locations/", OPERATOR_API),
        ("POST", "/api/locations/", roles(401, 403, 400, 401)),
    ],
    "api/^locations/(?P<pk>[^/.]+)/$": [
        ("GET", "/api/locations/{location}/", OPERATOR_API),
        ("DELETE", "/api/locations/{location}/", roles(401, 403, 405, 401)),
    ],
    "api/^locations/(?P<pk>[^/.]+)/disable/$": [
        ("POST", "/api/locations/{location}/disable/", ADMIN_API)
    ],
    "api/^locations/(?P<pk>[^/.]+)/enable/$": [
        ("POST", "/api/locations/{location}/enable/", ADMIN_API)
    ],
    # The feedback export (a zip of audio) and the retrain button (docs/models.md)
    "feedback/export.zip": [
        ("GET", "/feedback/export.zip", ADMIN_PAGE),
        ("POST", "/feedback/export.zip", same(405)),
    ],
    "feedback/retrain/": [
        ("GET", "/feedback/retrain/", same(405)),
        ("POST", "/feedback/retrain/", roles(LOGIN, 403, 302, LOGIN)),
    ],
    # Model registry (docs/models.md#model-registry): promotion and rollback for admins (in
    # this world version 1 is the only one and active: the API says 409, the page redirects
    # with the reason); the live figures for operators too.
    "models/": [("GET", "/models/", ADMIN_PAGE)],
    "models/<int:number>/promote/": [
        ("POST", "/models/{model}/promote/", roles(LOGIN, 403, 302, LOGIN))
    ],
    "models/rollback/": [("POST", "/models/rollback/", roles(LOGIN, 403, 302, LOGIN))],
    "models/<int:number>/report/": [("GET", "/models/{model}/report/", ADMIN_PAGE)],
    "models/<int:number>/report/<str:name>": [
        ("GET", "/models/{model}/report/pr_curve.png", ADMIN_PAGE),
        # Only the report's own pictures and text: never another file of the folder.
        ("GET", "/models/{model}/report/metrics.json", roles(LOGIN, 403, 404, LOGIN)),
        ("GET", "/models/{model}/report/..%2Fv1", same(404)),  # no route takes a "/"
    ],
    "api/^models/$": [("GET", "/api/models/", OPERATOR_API)],
    "api/^models/figures/$": [("GET", "/api/models/figures/", OPERATOR_API)],
    "api/^models/rollback/$": [("POST", "/api/models/rollback/", roles(401, 403, 409, 401))],
    r"api/^models/(?P<number>\d+)/$": [("GET", "/api/models/{model}/", OPERATOR_API)],
    r"api/^models/(?P<number>\d+)/promote/$": [
        ("POST", "/api/models/{model}/promote/", roles(401, 403, 409, 401))
    ],
    # Probes and the scrape: no login; /metrics from the loopback (the test client's address).
    "healthz": [("GET", "/healthz", PUBLIC)],
    "readyz": [("GET", "/readyz", PUBLIC)],
    "metrics": [("GET", "/metrics", PUBLIC)],
    # Notifications (docs/integrations.md): destinations for admins, deliveries for operators.
    "api/^destinations/$": [("GET", "/api/destinations/", ADMIN_API)],
    "api/^destinations/(?P<pk>[^/.]+)/$": [("GET", "/api/destinations/{destination}/", ADMIN_API)],
    "api/^deliveries/$": [("GET", "/api/deliveries/", OPERATOR_API)],
    "api/^deliveries/(?P<pk>[^/.]+)/$": [("GET", "/api/deliveries/{delivery}/", OPERATOR_API)],
    "api/alerts/<int:alert_id>/deliveries/": [
        ("GET", "/api/alerts/{alert}/deliveries/", OPERATOR_API)
    ],
    "api/^audit/$": [
        ("GET", "/api/audit/", ADMIN_API),
        ("POST", "/api/audit/", roles(401, 403, 405, 401)),
    ],
    "api/^audit/(?P<pk>[^/.]+)/$": [("GET", "/api/audit/{audit}/", ADMIN_API)],
    # Accounts (Django's views)
    "accounts/login/": [("GET", "/accounts/login/", PUBLIC)],
    "accounts/logout/": [("GET", "/accounts/logout/", same(405))],
    "accounts/password_change/": [
        ("GET", "/accounts/password_change/", roles(LOGIN, 200, 200, LOGIN))
    ],
    "accounts/password_change/done/": [
        ("GET", "/accounts/password_change/done/", roles(LOGIN, 200, 200, LOGIN))
    ],
    "accounts/password_reset/": [("GET", "/accounts/password_reset/", PUBLIC)],
    "accounts/password_reset/done/": [("GET", "/accounts/password_reset/done/", PUBLIC)],
    "accounts/reset/<uidb64>/<token>/": [("GET", "/accounts/reset/MQ/x-y/", PUBLIC)],
    "accounts/reset/done/": [("GET", "/accounts/reset/done/", PUBLIC)],
    # /admin/ outside the models (those are ADMIN_MODELS below)
    "admin/": [("GET", "/admin/", ADMIN_SITE)],
    "admin/login/": [("GET", "/admin/login/", roles(200, 200, 302, 200))],
    "admin/logout/": [("GET", "/admin/logout/", {**same(302), "admin": 405})],
    "admin/password_change/": [("GET", "/admin/password_change/", ADMIN_SITE)],
    "admin/password_change/done/": [("GET", "/admin/password_change/done/", ADMIN_SITE)],
    "admin/autocomplete/": [("GET", "/admin/autocomplete/", {**ADMIN_SITE, "admin": 403})],
    "admin/jsi18n/": [("GET", "/admin/jsi18n/", ADMIN_SITE)],
    "admin/r/<path:content_type_id>/<path:object_id>/": [
        ("GET", "/admin/r/{site_type}/{site}/", {**ADMIN_SITE, "admin": 404})
    ],
    "admin/^(?P<app_label>devices|alerts|notifications|auth|accounts)/$": [
        ("GET", "/admin/devices/", ADMIN_SITE)
    ],
    "admin/auth/user/<id>/password/": [
        ("GET", "/admin/auth/user/{user}/password/", {**ADMIN_SITE, "admin": 403})
    ],
    "admin/(?P<url>.*)$": [("GET", "/admin/nothing-here/", {**ADMIN_SITE, "admin": 404})],
}

# /admin/<app>/<model>/...: what the Admins role gets on each page (everyone else: the admin
# login). Kinds: changelist, add, change, delete, history, and the bare object URL (redirect).
FULL = {"changelist": 200, "add": 200, "change": 200, "delete": 200, "history": 200}
NO_ADD = {**FULL, "add": 403}
READ_ONLY = {**FULL, "add": 403, "delete": 403}
SUPERUSER_ONLY = dict.fromkeys(FULL, 403)
ADMIN_MODELS = {
    "devices.site": FULL,
    "devices.location": FULL,
    "devices.device": FULL,
    "alerts.alert": NO_ADD,
    "alerts.review": NO_ADD,
    "auth.user": SUPERUSER_ONLY,
    "auth.group": SUPERUSER_ONLY,
    "accounts.auditevent": READ_ONLY,
    "notifications.destination": FULL,
    "notifications.delivery": NO_ADD,
    "notifications.escalationpolicy": FULL,
}
ADMIN_MODEL_URLS = {
    "changelist": "/admin/{app}/{model}/",
    "add": "/admin/{app}/{model}/add/",
    "change": "/admin/{app}/{model}/{pk}/change/",
    "delete": "/admin/{app}/{model}/{pk}/delete/",
    "history": "/admin/{app}/{model}/{pk}/history/",
    "redirect": "/admin/{app}/{model}/{pk}/",
}
ADMIN_MODEL_ROUTES = {
    "admin/{app}/{model}/": "changelist",
    "admin/{app}/{model}/add/": "add",
    "admin/{app}/{model}/<path:object_id>/change/": "change",
    "admin/{app}/{model}/<path:object_id>/delete/": "delete",
    "admin/{app}/{model}/<path:object_id>/history/": "history",
    "admin/{app}/{model}/<path:object_id>/": "redirect",
}

# WebSocket route -> {role: answer}
WEBSOCKETS = {
    # Only a device token streams; a session (operator or admin) is no device credential.
    "ws/devices/stream/": roles(
        CODES["bad_token"], CODES["bad_token"], CODES["bad_token"], "ready"
    ),
    "ws/alerts/": roles("refused", "open", "open", "refused"),
}


def flatten(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from flatten(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def admin_model_routes() -> dict[str, tuple[str, str]]:
    routes = {}
    for model in admin.site._registry:
        app, name = model._meta.app_label, model._meta.model_name
        for pattern, kind in ADMIN_MODEL_ROUTES.items():
            routes[pattern.format(app=app, model=name)] = (model._meta.label_lower, kind)
    return routes


def websocket_routes(application) -> set[str]:
    """The path of every WebSocket route, found by walking the ASGI application's routers."""
    found: set[str] = set()

    def walk(app) -> None:
        for route in getattr(app, "routes", ()):
            found.add(str(route.pattern))
            walk(route.callback)
        for attribute in ("inner", "application"):
            inner = getattr(app, attribute, None)
            if inner is not None and inner is not app:
                walk(inner)

    walk(application.application_mapping["websocket"])
    return found


def test_every_route_has_a_rule(db):
    admin_routes = admin_model_routes()
    routes = set(flatten(get_resolver().url_patterns)) - set(admin_routes)
    assert routes - set(ROUTES) == set(), "routes without a rule in ROUTES"
    assert set(ROUTES) - routes == set(), "rules for routes that no longer exist"
    models = {label for label, _ in admin_routes.values()}
    assert models == set(ADMIN_MODELS), "admin models without a rule in ADMIN_MODELS"
    asgi = importlib.import_module("eyescream_site.asgi")
    assert websocket_routes(asgi.application) == set(WEBSOCKETS)


@pytest.fixture
def world(users, device, alert, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    site = device.location.site
    site.floor_plan.save("plan.png", ContentFile(PNG_1PX), save=False)
    site.save()
    alert.snippet.save("a.flac", ContentFile(b"fLaC-not-really"), save=True)
    token = services.issue_token(device)
    Review.objects.create(alert=alert, user=users["operator2"], label="1")
    review = alert.reviews.get()
    event = record(Actor.of_user(users["admin"]), "disable", device)
    destination = Destination.objects.create(
        site=site, name="hub", kind="webhook", url="https://hub.invalid/hook", secret="s" * 32
    )
    delivery = Delivery.objects.create(
        destination=destination,
        alert=alert,
        event="alert.opened",
        message_id="m-1",
        attempt=1,
        status=Delivery.DELIVERED,
        duration_ms=1.0,
    )
    policy = EscalationPolicy.objects.create(site=site, after_minutes=10)
    ids = {
        "site": site.pk,
        "location": device.location.pk,
        "device": device.pk,
        "alert": alert.pk,
        "snippet": alert.snippet.name.removeprefix("snippets/"),
        "audit": event.pk,
        "destination": destination.pk,
        "delivery": delivery.pk,
        "user": users["operator"].pk,
        "site_type": ContentType.objects.get_for_model(site).pk,
        "model": ModelVersion.objects.get(number=1).number,  # registered at migrate
    }
    objects = {
        "devices.site": site,
        "devices.location": device.location,
        "devices.device": device,
        "alerts.alert": alert,
        "alerts.review": review,
        "auth.user": users["operator"],
        "auth.group": Group.objects.get(name=OPERATORS),
        "accounts.auditevent": event,
        "notifications.destination": destination,
        "notifications.delivery": delivery,
        "notifications.escalationpolicy": policy,
    }
    return {"ids": ids, "objects": objects, "token": token, "users": users, "alert": alert}


def client_for(role: str, world) -> Client:
    client = Client()
    if role in ("operator", "admin"):
        client.force_login(world["users"][role])
    elif role == "device":
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {world['token']}"
    return client


def answer(response):
    if response.status_code == 302:
        where = response["Location"]
        if where.startswith("/accounts/login/"):
            return LOGIN
        if where.startswith("/admin/login/"):
            return ADMIN_LOGIN
    return response.status_code


def reset_alert(alert) -> None:
    """Each role's review starts from the same alert: new, reviewed once by someone else."""
    type(alert).objects.filter(pk=alert.pk).update(status="new")


def test_every_http_route_answers_each_role_as_the_table_says(world):
    wrong = []
    checks = [(p, m, u, e) for p, rows in ROUTES.items() for m, u, e in rows]
    for model, kinds in ADMIN_MODELS.items():
        obj = world["objects"][model]
        app, name = model.split(".")
        for kind, url in ADMIN_MODEL_URLS.items():
            admin_answer = 302 if kind == "redirect" else kinds[kind]
            expected = {**ADMIN_SITE, "admin": admin_answer}
            checks.append((model, "GET", url.format(app=app, model=name, pk=obj.pk), expected))
    for role in ROLES:
        client = client_for(role, world)
        for pattern, method, url, expected in checks:
            if method == "POST" and "review" in url and role == "operator":
                reset_alert(world["alert"])
            url = url.format(**world["ids"])
            data = {"label": "1"} if "review" in url else {"action": "disable"}
            if method == "GET":
                response = client.get(url)
            elif method == "POST":
                response = client.post(url, data)
            else:
                response = client.generic(method, url)
            got = answer(response)
            if got != expected[role]:
                wrong.append(f"{role:9} {method:6} {url} ({pattern}): {got}, want {expected[role]}")
    assert not wrong, "\n" + "\n".join(wrong)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("matrix"))
    live.migrate()
    live.start()
    for role, group in (("operator", "Operators"), ("admin", "Admins")):
        live.make_user(f"matrix-{role}", PASSWORD, group)
    token = live.make_devices({"matrix-mic": {}})["matrix-mic"]["token"]
    yield live, token
    live.stop()


async def ws_answer(url: str, first: str | None, headers: dict) -> object:
    try:
        ws = await websockets.connect(url, additional_headers=headers, proxy=None, open_timeout=10)
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 403
        return "refused"
    try:
        if first is None:
            try:
                await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                return "open"
        await ws.send(first)
        async for message in ws:
            data = json.loads(message)
            if data.get("type") == "ready":
                return "ready"
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


@pytest.mark.slow
def test_every_websocket_route_answers_each_role_as_the_table_says(server):
    live, token = server
    sessions = {role: live.login(f"matrix-{role}", PASSWORD) for role in ("operator", "admin")}
    base = live.http_url.replace("http", "ws", 1)
    wrong = []
    for role in ROLES:
        headers = {}
        if role in sessions:
            headers["Cookie"] = f"sessionid={sessions[role].cookies['sessionid']}"
        if role == "device":
            headers["Authorization"] = f"Token {token}"
        for route, expected in WEBSOCKETS.items():
            first = None
            if route == "ws/devices/stream/":
                first = hello(token if role == "device" else "esd_" + "x" * 43)
            got = asyncio.run(ws_answer(f"{base}/{route}", first, headers))
            if got != expected[role]:
                wrong.append(f"{role:9} {route}: {got}, want {expected[role]}")
    assert not wrong, "\n" + "\n".join(wrong)
